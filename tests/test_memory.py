"""The public API on the real bundled embedder and a real Milvus Lite file (infer=False paths)."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from localmem import (
    InvalidFilterError,
    InvalidInputError,
    LocalmemWarning,
    Memory,
    MemoryConfig,
    MemoryNotFoundError,
    SchemaMismatchError,
    VectorStoreConfig,
)
from localmem.embedders.fake import HashingEmbedder

from .conftest import MemoryFactory, plain

pytestmark = pytest.mark.slow

ITEM_KEYS = {"id", "memory", "hash", "metadata", "created_at", "updated_at", "user_id", "kind", "speaker",
             "timestamp", "role", "superseded_by", "valid_until"}


def _iso_with_offset(value: str) -> bool:
    return datetime.fromisoformat(value).utcoffset() is not None


def test_crud_walkthrough_returns_mem0_shapes(make_memory: MemoryFactory, real_embedder) -> None:
    memory = make_memory(real_embedder)
    added = memory.add("I am working on improving my tennis skills.", user_id="alice",
                       metadata={"category": "hobbies"}, infer=False)
    assert added["relations"] == []
    (item,) = added["results"]
    assert item["event"] == "ADD" and uuid.UUID(item["id"]).version == 4

    got = memory.get(item["id"])
    assert set(got) == ITEM_KEYS
    assert got["hash"] == hashlib.md5(got["memory"].encode()).hexdigest()
    assert got["metadata"] == {"category": "hobbies"} and got["user_id"] == "alice"
    assert _iso_with_offset(got["created_at"]) and got["updated_at"] is None

    assert memory.update(memory_id=item["id"], data="Likes to play tennis on weekends") == {
        "message": "Memory updated successfully!"}
    updated = memory.get(item["id"])
    assert updated["memory"] == "Likes to play tennis on weekends" and _iso_with_offset(updated["updated_at"])
    assert updated["created_at"] == got["created_at"]

    history = memory.history(memory_id=item["id"])
    assert [h["event"] for h in history] == ["ADD", "UPDATE"]
    assert set(history[0]) >= {"id", "memory_id", "old_memory", "new_memory", "event", "created_at", "updated_at"}
    assert (plain(history[1]["old_memory"]), history[1]["new_memory"]) == (
        "I am working on improving my tennis skills.", "Likes to play tennis on weekends")

    memory.add("I have a linear algebra midterm exam on November 20", user_id="alice",
               metadata={"category": "task"}, infer=False)
    hits = memory.search(query="What are Alice's hobbies", user_id="alice")["results"]
    assert hits[0]["memory"] == "Likes to play tennis on weekends"  # update() sets the text as given
    assert set(hits[0]) == ITEM_KEYS | {"score", "distance"}
    assert hits[0]["score"] > hits[1]["score"]

    assert memory.delete(memory_id=item["id"]) == {"message": "Memory deleted successfully!"}
    remaining = memory.get_all("alice")["results"]
    assert [plain(r["memory"]) for r in remaining] == ["I have a linear algebra midterm exam on November 20"]
    assert memory.history(item["id"])[-1]["event"] == "DELETE"
    with pytest.raises(MemoryNotFoundError):
        memory.get(item["id"])


def test_scopes_filters_limit_and_threshold(make_memory: MemoryFactory, real_embedder) -> None:
    memory = make_memory(real_embedder)
    memory.add("Plays tennis every Sunday", user_id="alice", agent_id="coach", metadata={"level": 3}, infer=False)
    memory.add("Owns a red bicycle", user_id="alice", metadata={"level": 1, "tags": ["bike"]}, infer=False)
    memory.add("Plays tennis badly", user_id="bob", infer=False)

    assert {plain(r["memory"]) for r in memory.get_all(user_id="alice")["results"]} == {
        "Plays tennis every Sunday", "Owns a red bicycle"}
    coach = memory.get_all(agent_id="coach")["results"]
    assert [(plain(r["memory"]), r["agent_id"]) for r in coach] == [("Plays tennis every Sunday", "coach")]
    assert [plain(r["memory"]) for r in memory.get_all(user_id="alice", filters={"level": {"gte": 2}})["results"]] == [
        "Plays tennis every Sunday"]
    assert [plain(r["memory"]) for r in memory.get_all(filters={"tags": {"contains": "bike"}})["results"]] == [
        "Owns a red bicycle"]
    either = memory.get_all(filters={"OR": [{"user_id": "bob"}, {"level": 1}]})["results"]
    assert {plain(r["memory"]) for r in either} == {"Plays tennis badly", "Owns a red bicycle"}

    everything = memory.search("tennis", user_id="alice")["results"]
    assert next(plain(r["memory"]) for r in everything) == "Plays tennis every Sunday"
    assert len(memory.search("tennis", user_id="alice", limit=1)["results"]) == 1
    cut = everything[0]["score"] - 1e-6
    assert [plain(r["memory"]) for r in memory.search("tennis", user_id="alice", threshold=cut)["results"]] == [
        "Plays tennis every Sunday"]


def test_hostile_scope_values_select_only_exact_matches(make_memory: MemoryFactory, real_embedder) -> None:
    memory = make_memory(real_embedder)
    memory.add("secret of alice", user_id="alice", infer=False)
    for hostile in ['alice" or user_id != "', "alice' or '1'=='1", 'x" || true || "', "\\", 'a"]) or (["']:
        assert memory.get_all(user_id=hostile)["results"] == []
        assert memory.search("secret", user_id=hostile)["results"] == []
        memory.add(f"note for {hostile}", user_id=hostile, infer=False)
        assert [plain(r["memory"]) for r in memory.get_all(user_id=hostile)["results"]] == [f"note for {hostile}"]
    assert [plain(r["memory"]) for r in memory.get_all(user_id="alice")["results"]] == ["secret of alice"]


def test_delete_all_and_reset(make_memory: MemoryFactory, real_embedder) -> None:
    memory = make_memory(real_embedder)
    ids = [memory.add(f"fact number {i}", user_id="a", infer=False)["results"][0]["id"] for i in range(3)]
    memory.add("kept", user_id="b", infer=False)
    memory.delete_all(user_id="a")
    assert memory.get_all(user_id="a")["results"] == []
    assert [h["event"] for h in memory.history(ids[0])] == ["ADD", "DELETE"]
    assert len(memory.get_all(user_id="b")["results"]) == 1
    memory.reset()
    assert memory.get_all(user_id="b")["results"] == []
    with pytest.raises(MemoryNotFoundError):
        memory.history(ids[0])


def test_bad_input_is_rejected_and_nothing_is_written(make_memory: MemoryFactory, real_embedder) -> None:
    memory = make_memory(real_embedder)
    memory.add("keep me", user_id="u", infer=False)
    with pytest.raises(InvalidInputError, match="user_id, agent_id or run_id"):
        memory.add("no scope", infer=False)
    with pytest.raises(InvalidInputError, match="JSON"):
        memory.add("bad metadata", user_id="u", metadata={"when": datetime.now()}, infer=False)
    with pytest.raises(InvalidInputError):
        memory.add("", user_id="u", infer=False)
    with pytest.raises(InvalidInputError):
        memory.add([{"role": "user", "content": {"image": "x"}}], user_id="u", infer=False)
    with pytest.raises(InvalidFilterError):
        memory.get_all(user_id="u", filters={"level": {"regex": ".*"}})
    with pytest.raises(MemoryNotFoundError, match="no memory with id 'nope'"):
        memory.update("nope", "x")
    with pytest.raises(MemoryNotFoundError):
        memory.delete("nope")
    with pytest.raises(InvalidInputError):
        memory.update(memory.get_all(user_id="u")["results"][0]["id"], "   ")
    with pytest.raises(InvalidInputError):
        memory.search("q")
    assert [plain(r["memory"]) for r in memory.get_all(user_id="u")["results"]] == ["keep me"]


def test_reopen_keeps_memories_and_refuses_another_embedder(tmp_path: Path, real_embedder) -> None:
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "m.db")))
    with Memory(config, embedder=real_embedder) as memory:
        memory_id = memory.add("Drinks oat milk", user_id="u", infer=False)["results"][0]["id"]
    with Memory(config, embedder=real_embedder) as memory:
        assert plain(memory.get(memory_id)["memory"]) == "Drinks oat milk"
        assert memory.search("milk", user_id="u")["results"][0]["id"] == memory_id
    with pytest.raises(SchemaMismatchError, match="384"):
        Memory(config, embedder=HashingEmbedder(dims=64))
    with Memory(config, embedder=real_embedder) as memory:
        assert plain(memory.get(memory_id)["memory"]) == "Drinks oat milk"


def test_hosted_embedding_size_is_replaced_with_a_warning(tmp_path: Path, real_embedder) -> None:
    config = MemoryConfig.from_dict({"vector_store": {"provider": "milvus", "config": {
        "embedding_model_dims": "1536", "url": str(tmp_path / "m.db")}}})
    with pytest.warns(LocalmemWarning, match="1536.*384"), Memory(config, embedder=real_embedder) as memory:
        memory.add("Vectors are 384 wide", user_id="u", infer=False)
        assert memory.search("vectors", user_id="u")["results"]


def test_messages_list_infer_false_stores_each_non_system_message(make_memory: MemoryFactory,
                                                                   real_embedder) -> None:
    memory = make_memory(real_embedder)
    result = memory.add([{"role": "system", "content": "be nice"}, {"role": "user", "content": "I like jazz"},
                         {"role": "assistant", "content": "Noted: you like jazz"}], user_id="u", infer=False)
    assert [plain(r["memory"]) for r in result["results"]] == ["I like jazz", "Noted: you like jazz"]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", r["id"]) for r in result["results"])
