"""Export/import on a real Milvus Lite folder: a round trip loses nothing; bad files write nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from localmem import InvalidInputError, Memory
from localmem.embedders.fake import HashingEmbedder
from localmem.transfer import export_store, import_store

from .conftest import MemoryFactory, plain

pytestmark = pytest.mark.slow


def _filled(make_memory: MemoryFactory, embedder: HashingEmbedder) -> tuple[Memory, str]:
    memory = make_memory(embedder, name="src.db")
    ids = [memory.add(text, user_id="u", agent_id="a" if i % 2 else None, infer=False,
                      metadata={"i": i, "tags": ["x"]})["results"][0]["id"]
           for i, text in enumerate(["likes green tea", "has a cat named Luna", "works as a nurse — «night shifts»"])]
    memory.update(ids[0], "likes green tea with honey")
    memory.delete(ids[1])  # its history must survive the trip too
    return memory, ids[1]


def _export(memory: Memory, path: Path, vectors: bool) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        export_store(memory, fh, with_vectors=vectors)
    return path


def _state(memory: Memory, ids: list[str]) -> dict[str, object]:
    return {"memories": {i: memory.get(i) for i in ids}, "history": {i: memory.history(i) for i in ids}}


@pytest.mark.parametrize("vectors", [True, False])
def test_round_trip_keeps_ids_timestamps_scopes_metadata_and_history(make_memory: MemoryFactory, tmp_path: Path,
                                                                      vectors: bool) -> None:
    embedder = HashingEmbedder()
    source, deleted = _filled(make_memory, embedder)
    path = _export(source, tmp_path / "dump.jsonl", vectors)
    live = [r.id for r, _ in source.store.iterate()]
    before = _state(source, live) | {"deleted": source.history(deleted)}
    target = make_memory(embedder, name="dst.db")
    summary = import_store(target, path)
    assert summary.memories == 2 and summary.reembedded == (0 if vectors else 2)
    assert _state(target, live) | {"deleted": target.history(deleted)} == before
    src_vectors, dst_vectors = source.store.get_vectors(live), target.store.get_vectors(live)
    for i in live:
        np.testing.assert_allclose(src_vectors[i], dst_vectors[i], rtol=1e-6)


def test_another_embedder_re_embeds(make_memory: MemoryFactory, tmp_path: Path) -> None:
    source, _ = _filled(make_memory, HashingEmbedder(dims=64))
    path = _export(source, tmp_path / "dump.jsonl", vectors=True)
    target = make_memory(HashingEmbedder(dims=32), name="dst.db")
    summary = import_store(target, path)
    assert summary.memories == 2 and summary.reembedded == 2
    hits = target.search("green tea", user_id="u")["results"]
    assert hits[0]["memory"] == "likes green tea with honey"


def test_a_bad_line_anywhere_writes_nothing(make_memory: MemoryFactory, tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    source, _ = _filled(make_memory, embedder)
    good = _export(source, tmp_path / "dump.jsonl", vectors=False).read_text().splitlines()
    target = make_memory(embedder, name="dst.db")
    target.add("already here", user_id="u", infer=False)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*good, '{"type": "memory", "id": "x", "memory": ""}']) + "\n")
    with pytest.raises(InvalidInputError, match=r"broken.jsonl:\d+: memory line needs"):
        import_store(target, broken)
    assert [plain(r["memory"]) for r in target.get_all(user_id="u")["results"]] == ["already here"]
    newer = tmp_path / "newer.jsonl"
    header = json.loads(good[0]) | {"version": 99}
    newer.write_text(json.dumps(header) + "\n")
    with pytest.raises(InvalidInputError, match="newer than this localmem"):
        import_store(target, newer)
    not_export = tmp_path / "other.jsonl"
    not_export.write_text('{"hello": 1}\n')
    with pytest.raises(InvalidInputError, match="not a localmem export"):
        import_store(target, not_export)


def test_export_header_names_format_embedder_and_count(make_memory: MemoryFactory) -> None:
    embedder = HashingEmbedder()
    source, _ = _filled(make_memory, embedder)
    buffer = io.StringIO()
    summary = export_store(source, buffer)
    header = json.loads(buffer.getvalue().splitlines()[0])
    assert header["format"] == "localmem-export" and header["version"] == 1
    assert header["embedder"] == embedder.identity.to_dict() and header["count"] == 2
    assert summary.orphan_histories == 1 and summary.history_events == 5  # 2 + 2 (deleted) + 1


def test_on_conflict_error_refuses_before_writing_anything(make_memory: MemoryFactory, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = HashingEmbedder()
    source, _ = _filled(make_memory, embedder)
    path = _export(source, tmp_path / "dump.jsonl", vectors=True)
    first, second = [json.loads(line)["id"] for line in path.read_text().splitlines()
                     if json.loads(line).get("type") == "memory"]
    target = make_memory(embedder, name="dst.db")
    import_store(target, path)
    target.delete(first)  # now only the file's *second* memory conflicts
    monkeypatch.setattr("localmem.transfer._BATCH", 1)  # the first memory would be its own, earlier batch
    with pytest.raises(InvalidInputError, match="nothing was imported"):
        import_store(target, path, on_conflict="error")
    assert [r["id"] for r in target.get_all(user_id="u")["results"]] == [second]
