"""An import file is untrusted: every id it names stays in the scope of its line, and a refused file writes nothing.

Each test is one of the attacks of issue #37, on a real Milvus Lite folder: mallory imports a
file that names bob's memories; bob's memories and their history must come out unchanged.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from localmem import InvalidInputError, Memory
from localmem.embedders.fake import HashingEmbedder
from localmem.records import FACT, Event, MemoryRecord, Scope, text_hash
from localmem.transfer import export_store, import_store
from localmem.writer import Write

from .conftest import MemoryFactory

pytestmark = pytest.mark.slow
STAMP = "2026-01-01T00:00:00+00:00"


def _bob(memory: Memory) -> list[str]:
    return [memory.add(text, user_id="bob", infer=False)["results"][0]["id"]
            for text in ("bob's bank pin is 4321", "bob sees a doctor on Friday", "bob's sister is Ann")]


def _line(memory_id: str, text: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"type": "memory", "id": memory_id, "memory": text, "created_at": STAMP, "user_id": user,
            "kind": FACT, **extra}


def _file(memory: Memory, path: Path, lines: list[dict[str, Any]]) -> Path:
    buffer = io.StringIO()
    export_store(memory, buffer)
    header = buffer.getvalue().splitlines()[0]
    path.write_text("\n".join([header, *(json.dumps(line) for line in lines)]) + "\n", encoding="utf-8")
    return path


def _snapshot(memory: Memory, ids: list[str]) -> dict[str, Any]:
    return {i: (memory.get(i), memory.history(i)) for i in ids}


@pytest.fixture
def target(make_memory: MemoryFactory) -> Memory:
    return make_memory(HashingEmbedder())


def test_a_source_in_another_scope_is_refused_with_its_line(target: Memory, tmp_path: Path) -> None:
    bob = _bob(target)
    before = _snapshot(target, bob)
    path = _file(target, tmp_path / "evil.jsonl", [_line("m-1", "mallory likes tea", "mallory"),
                                                   _line("m-2", "a fact", "mallory", source_ids=bob)])
    with pytest.raises(InvalidInputError, match=r"evil.jsonl:3: a source .* another scope"):
        import_store(target, path)
    assert target.get_all(user_id="mallory")["results"] == []
    assert _snapshot(target, bob) == before


def test_superseded_by_in_another_scope_is_refused(target: Memory, tmp_path: Path) -> None:
    bob = _bob(target)
    path = _file(target, tmp_path / "evil.jsonl", [_line("m-1", "old news", "mallory", kind="episode",
                                                         superseded_by=bob[0], valid_until=STAMP)])
    with pytest.raises(InvalidInputError, match=r"evil.jsonl:2: superseded_by .* another scope"):
        import_store(target, path)
    assert target.store.count() == 3


def test_a_source_on_another_scopes_line_of_the_file_is_refused(target: Memory, tmp_path: Path) -> None:
    path = _file(target, tmp_path / "evil.jsonl", [_line("f-1", "a fact", "mallory", source_ids=["e-1"]),
                                                   _line("e-1", "said by bob", "bob", kind="episode")])
    with pytest.raises(InvalidInputError, match=r"evil.jsonl:2: a source 'e-1' belongs to another scope \(line 3"):
        import_store(target, path)
    assert target.store.count() == 0


def test_a_history_line_cannot_reach_a_live_memory(target: Memory, tmp_path: Path) -> None:
    bob = _bob(target)
    before = _snapshot(target, bob)
    fake = {"id": "ev-1", "event": "DELETE", "old_memory": "x", "created_at": STAMP, "is_deleted": True}
    path = _file(target, tmp_path / "evil.jsonl", [{"type": "history", "memory_id": bob[0], "events": [fake]}])
    with pytest.raises(InvalidInputError, match=r"evil.jsonl:2: a history line for memory .* which this store holds"):
        import_store(target, path)
    assert _snapshot(target, bob) == before


def test_a_history_line_cannot_extend_a_deleted_memorys_history(target: Memory, tmp_path: Path) -> None:
    gone = _bob(target)[0]
    target.delete(gone)
    before = target.history(gone)
    fake = {"id": "ev-1", "event": "UPDATE", "new_memory": "x", "created_at": STAMP}
    path = _file(target, tmp_path / "evil.jsonl", [{"type": "history", "memory_id": gone, "events": [fake]}])
    with pytest.raises(InvalidInputError, match=r"evil.jsonl:2: a history line adds events"):
        import_store(target, path)
    assert target.history(gone) == before


def test_replace_cannot_move_another_users_memory(target: Memory, tmp_path: Path) -> None:
    bob = _bob(target)
    before = _snapshot(target, bob)
    path = _file(target, tmp_path / "evil.jsonl", [_line(bob[1], "now mallory's", "mallory")])
    with pytest.raises(InvalidInputError, match=r"evil.jsonl:2: memory .* belongs to another scope"):
        import_store(target, path, on_conflict="replace")
    assert _snapshot(target, bob) == before
    # Skipping it is harmless: the line is left out and bob's memory stays his.
    assert import_store(target, path, on_conflict="skip").skipped == 1
    assert _snapshot(target, bob) == before


def test_one_id_with_two_scopes_in_one_file_is_refused(target: Memory, tmp_path: Path) -> None:
    path = _file(target, tmp_path / "evil.jsonl", [_line("x-1", "first", "bob"), _line("x-1", "second", "mallory")])
    with pytest.raises(InvalidInputError, match=r"evil.jsonl:3: memory 'x-1' was given another scope on line 2"):
        import_store(target, path, on_conflict="replace")


def test_a_job_cannot_name_another_scopes_episode(target: Memory, tmp_path: Path) -> None:
    bob = _bob(target)
    job = {"messages": [{"role": "user", "content": "hi"}], "scope": {"user_id": "mallory"}, "moment": STAMP,
           "metadata": {}, "prompt": None, "episodes": [[bob[0], "h", [0]]]}
    path = _file(target, tmp_path / "evil.jsonl", [{"type": "job", "job": job}])
    with pytest.raises(InvalidInputError, match=r"evil.jsonl:2: an episode of the job .* another scope"):
        import_store(target, path)


def test_a_bad_line_after_a_full_batch_leaves_the_store_as_it_was(target: Memory, tmp_path: Path) -> None:
    """300 good lines, then a timestamp that is not a date: refused before the first batch of 256 is written."""
    target.add("already here", user_id="u", infer=False)
    events = len(target.history_store.all_events())
    lines = [_line(f"g-{i}", f"good fact {i}", "u", history=[
        {"id": f"h-{i}", "event": "ADD", "new_memory": f"good fact {i}", "created_at": STAMP}]) for i in range(300)]
    lines.append(_line("bad-1", "bad time", "u", timestamp="not a date"))
    path = _file(target, tmp_path / "bad.jsonl", lines)
    with pytest.raises(InvalidInputError, match=r"bad.jsonl:302: "):
        import_store(target, path)
    assert target.store.count() == 1 and len(target.history_store.all_events()) == events


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_vector_must_be_finite(target: Memory, tmp_path: Path, value: str) -> None:
    dims = target.embedder.identity.dims
    path = _file(target, tmp_path / "nan.jsonl", [_line("v-1", "a fact", "u", vector=[0.0] * dims)])
    text = path.read_text().replace("[0.0, ", f"[{value}, ", 1)  # json.dumps would not write it
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=r"nan.jsonl:2: vector must be a list of finite numbers"):
        import_store(target, path)
    assert target.store.count() == 0


def test_metadata_nested_5000_deep_is_invalid_input(target: Memory, tmp_path: Path) -> None:
    path = _file(target, tmp_path / "deep.jsonl", [])
    deep = '{"k": ' * 5000 + "1" + "}" * 5000
    line = json.dumps(_line("d-1", "deep", "u"))[:-1] + f', "metadata": {deep}}}'
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    with pytest.raises(InvalidInputError, match=r"deep.jsonl:2: .*nested too deeply"):
        import_store(target, path)
    shallow = '{"k": ' * 40 + "1" + "}" * 40  # parsed, but deeper than add() accepts
    path.write_text(path.read_text().replace(deep, shallow))
    with pytest.raises(InvalidInputError, match=r"deep.jsonl:2: metadata is nested more than 32"):
        import_store(target, path)
    assert target.store.count() == 0


def test_a_clean_file_with_links_in_its_scope_imports(target: Memory, tmp_path: Path) -> None:
    """The checks refuse only what crosses a scope: a fact and its episode of one user go in."""
    path = _file(target, tmp_path / "ok.jsonl", [
        _line("f-1", "likes tea", "u", source_ids=["e-1"]),
        _line("e-1", "I like tea", "u", kind="episode", covered=True)])
    assert import_store(target, path).memories == 2
    assert [s["id"] for s in target.get("f-1")["sources"]] == ["e-1"]


def test_links_already_stored_are_followed_only_within_their_scope(target: Memory) -> None:
    """Defence in depth: a store written before imports were checked may hold a fact naming another
    user's messages; get, search and delete never reach them through it."""
    bob = _bob(target)
    before = _snapshot(target, bob)
    text = "mallory's note about a doctor"
    fact = MemoryRecord(id="planted", memory=text, hash=text_hash(text), scope=Scope(user_id="mallory"),
                        metadata={}, created_at=STAMP, kind=FACT, sources=tuple(bob))
    target.writer.apply([Write(Event.ADD, fact, target.embedder.embed([text]))])
    assert target.get("planted")["sources"] == []
    hits = target.search("doctor", user_id="mallory")["results"]
    assert [h["id"] for h in hits] == ["planted"] and hits[0]["sources"] == []
    target.delete("planted")
    assert _snapshot(target, bob) == before
