"""The Writer on a real Milvus Lite folder: undo restores exactly, a failed undo says so, the journal recovers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from localmem import HistoryError, Memory, MemoryConfig, StoreError, VectorStoreConfig
from localmem.embedders.fake import HashingEmbedder
from localmem.errors import RollbackError
from localmem.journal import Intent
from localmem.records import Event, HistoryEvent, now_iso, text_hash
from localmem.writer import Write

from .conftest import MemoryFactory, plain

pytestmark = pytest.mark.slow


def _break_history(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise HistoryError("disk full")

    monkeypatch.setattr(memory.history_store, "commit", broken)


def _consistent(memory: Memory) -> None:
    """Every stored memory has a history ending in its text; every live history has its memory."""
    stored = {r.id: r for r, _ in memory.store.iterate()}
    last: dict[str, HistoryEvent] = {}
    for event in memory.history_store.all_events():
        last[event.memory_id] = event
    for memory_id, record in stored.items():
        assert memory_id in last, f"{memory_id} is stored without history"
        assert last[memory_id].event is not Event.DELETE and last[memory_id].new_memory == record.memory
    for memory_id, event in last.items():
        assert (event.event is Event.DELETE) == (memory_id not in stored), memory_id
    assert memory.history_store.intents() == []


def test_a_rolled_back_delete_keeps_the_record_exactly(make_memory: MemoryFactory,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    memory = make_memory(HashingEmbedder())
    kept = memory.add("Keeps bees", user_id="u", infer=False)["results"][0]["id"]
    memory.update(kept, "Keeps bees and wasps")
    before, vector = memory.get(kept), memory.store.get_vectors([kept])[kept]
    _break_history(memory, monkeypatch)
    with pytest.raises(HistoryError):
        memory.delete(kept)
    assert memory.get(kept) == before  # updated_at included
    np.testing.assert_array_equal(memory.store.get_vectors([kept])[kept], vector)
    monkeypatch.undo()
    _consistent(memory)


def test_an_update_without_its_previous_vector_is_still_undone(make_memory: MemoryFactory,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = HashingEmbedder()
    memory = make_memory(embedder)
    kept = memory.add("Keeps bees", user_id="u", infer=False)["results"][0]["id"]
    old, vector = memory.store.get([kept])[0], memory.store.get_vectors([kept])[kept]
    new = replace(old, memory="Keeps wasps", hash=text_hash("Keeps wasps"), updated_at=now_iso())
    write = Write(Event.UPDATE, new, embedder.embed(["Keeps wasps"]), previous=old)  # no previous_vector given
    _break_history(memory, monkeypatch)
    with pytest.raises(HistoryError):
        memory.writer.apply([write])
    assert memory.store.get([kept]) == [old]
    np.testing.assert_array_equal(memory.store.get_vectors([kept])[kept], vector)


def test_a_failed_undo_raises_with_the_ids_and_the_next_open_finishes_it(
        make_memory: MemoryFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    memory = make_memory(embedder)
    kept = memory.add("Keeps bees", user_id="u", infer=False)["results"][0]["id"]
    _break_history(memory, monkeypatch)

    def broken_delete(ids: Sequence[str]) -> None:
        raise StoreError("the store went away")

    monkeypatch.setattr(memory.store, "delete", broken_delete)
    with pytest.raises(RollbackError) as caught:
        memory.add("Plays the oboe", user_id="u", infer=False)
    added = caught.value.ids
    assert len(added) == 1 and added[0] != kept
    assert isinstance(caught.value.original, HistoryError) and isinstance(caught.value.__cause__, StoreError)
    assert memory.store.get(added)  # the row is still there: that is what the error says
    monkeypatch.undo()
    # Die here, as far as the journal knows: close the two stores, not the Writer (whose close would finish it).
    memory.store.close()
    memory.history_store.close()
    reopened = Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "mem.db"))), embedder=embedder)
    try:
        assert reopened.store.get(added) == []  # the journal finished the undo
        assert [r["id"] for r in reopened.get_all(user_id="u")["results"]] == [kept]
        _consistent(reopened)
    finally:
        reopened.close()


def test_the_same_process_finishes_an_undo_on_its_next_write(make_memory: MemoryFactory,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    memory = make_memory(HashingEmbedder())
    with monkeypatch.context() as patch:
        _break_history(memory, patch)
        patch.setattr(memory.store, "delete", lambda ids: (_ for _ in ()).throw(StoreError("gone")))
        with pytest.raises(RollbackError):
            memory.add("Plays the oboe", user_id="u", infer=False)
    memory.add("Keeps bees", user_id="u", infer=False)
    assert [plain(r["memory"]) for r in memory.get_all(user_id="u")["results"]] == ["Keeps bees"]
    _consistent(memory)


def test_ctrl_c_mid_import_batch_leaves_no_rows_without_history(make_memory: MemoryFactory, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from localmem import writer
    from localmem.transfer import export_store, import_store

    embedder = HashingEmbedder()
    source = make_memory(embedder, name="src.db")
    for i in range(300):  # two batches
        source.add(f"fact {i}", user_id="u", infer=False)
    path = tmp_path / "dump.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        export_store(source, fh)
    target = make_memory(embedder, name="dst.db")
    calls = {"stored": 0}

    def interrupt(step: str) -> None:
        if step == "stored":
            calls["stored"] += 1
            if calls["stored"] == 2:  # the second batch: the first one was acknowledged
                raise KeyboardInterrupt

    monkeypatch.setattr(writer, "checkpoint", interrupt)
    with pytest.raises(KeyboardInterrupt):
        import_store(target, path)
    assert target.store.count() == 256
    _consistent(target)


def test_an_intent_left_behind_is_rolled_forward_on_open(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "mem.db")))
    memory = Memory(config, embedder=embedder)
    kept = memory.add("Keeps bees", user_id="u", infer=False)["results"][0]["id"]
    record = memory.store.get([kept])[0]
    write = Write.delete(record)
    memory.history_store.begin(Intent(deletes=(kept,), events=(write.history_event(),)).to_json())
    memory.close()
    memory = Memory(config, embedder=embedder)
    try:
        assert memory.get_all(user_id="u")["results"] == []
        assert [e["event"] for e in memory.history(kept)] == ["ADD", "DELETE"]
        _consistent(memory)
    finally:
        memory.close()
