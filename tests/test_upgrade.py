"""A collection written by localmem 0.1 (schema 1) opens with this code, upgraded in place, nothing lost.

The old folder is written directly through pymilvus with schema 1's exact field layout and
properties (localmem 0.1's MilvusStore._create), so the test does not depend on old code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pymilvus import DataType, MilvusClient

from localmem import Memory, MemoryConfig, VectorStoreConfig
from localmem.embedders.fake import HashingEmbedder
from localmem.vector_stores import milvus, upgrade

from .test_pipeline import ScriptedModel

NAME = "localmem"
ROWS = [("m1", "Plays tennis every Sunday", "alice", {"category": "hobbies"}),
        ("m2", "Has a linear algebra midterm on November 20", "alice", {"category": "task"}),
        ("m3", "Owns a red bicycle called Zephyr", "bob", {})]


def write_v1_folder(path: Path, embedder: HashingEmbedder) -> None:
    client = MilvusClient(uri=str(path))
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=embedder.identity.dims)
    schema.add_field("memory", DataType.VARCHAR, max_length=65535)
    schema.add_field("hash", DataType.VARCHAR, max_length=64)
    for key in ("user_id", "agent_id", "run_id"):
        schema.add_field(key, DataType.VARCHAR, max_length=2048)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("created_at", DataType.VARCHAR, max_length=64)
    schema.add_field("updated_at", DataType.VARCHAR, max_length=64)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="COSINE")
    client.create_collection(NAME, schema=schema, index_params=index, consistency_level="Strong",
                             properties={"localmem.schema_version": "1",
                                         "localmem.embedder": json.dumps(embedder.identity.to_dict())})
    vectors = embedder.embed([text for _, text, _, _ in ROWS])
    client.insert(NAME, [{"id": i, "vector": v.tolist(), "memory": text, "hash": "h" + i, "user_id": user,
                          "agent_id": "", "run_id": "", "metadata": meta,
                          "created_at": "2024-01-02T03:04:05+00:00", "updated_at": ""}
                         for (i, text, user, meta), v in zip(ROWS, vectors, strict=True)])
    client.flush(NAME)
    client.close()


def _open(path: Path, embedder: HashingEmbedder) -> Memory:
    return Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(path))), embedder=embedder)


def _check_everything_survived(memory: Memory) -> None:
    alice = memory.get_all(user_id="alice")["results"]
    assert [(r["id"], r["memory"], r["metadata"]) for r in alice] == [(i, t, m) for i, t, u, m in ROWS if u == "alice"]
    assert all(r["kind"] == "fact" and r["sources"] == [] for r in alice)
    assert alice[0]["timestamp"] == "2024-01-02T03:04:05+00:00"
    assert [r["id"] for r in memory.get_all(user_id="bob")["results"]] == ["m3"]
    assert memory.store.count() == len(ROWS)


def test_a_schema_1_folder_is_upgraded_in_place_and_searchable_by_words(tmp_path: Path,
                                                                        hashing_embedder: HashingEmbedder) -> None:
    path = tmp_path / "old.db"
    write_v1_folder(path, hashing_embedder)
    with _open(path, hashing_embedder) as memory:
        _check_everything_survived(memory)
        store: Any = memory.store
        assert store.hybrid  # the BM25 field exists now
        assert memory.search("Zephyr", user_id="bob")["results"][0]["id"] == "m3"
        memory.add("I sold the bicycle", user_id="bob", infer=False)
        properties = store._client.describe_collection(NAME)["properties"]
        assert properties[upgrade.PROPERTY] == str(milvus.SCHEMA_VERSION)
    with _open(path, hashing_embedder) as memory:  # reopening does not upgrade again
        assert len(memory.get_all(user_id="bob")["results"]) == 2


class _CrashOnRename:
    """A client that dies between dropping the old collection and renaming the copy."""

    def __init__(self, client: MilvusClient) -> None:
        self._client = client

    def rename_collection(self, old: str, new: str) -> None:
        raise KeyboardInterrupt("simulated crash")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_an_upgrade_interrupted_after_the_drop_is_finished_on_the_next_open(
        tmp_path: Path, hashing_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    write_v1_folder(path, hashing_embedder)
    original = milvus.MilvusStore._connect
    monkeypatch.setattr(milvus.MilvusStore, "_connect", lambda self: _CrashOnRename(original(self)))
    with pytest.raises(KeyboardInterrupt):
        _open(path, hashing_embedder)
    monkeypatch.setattr(milvus.MilvusStore, "_connect", original)
    client = MilvusClient(uri=str(path))
    assert not client.has_collection(NAME) and client.has_collection(NAME + "__upgrade")
    client.close()
    with _open(path, hashing_embedder) as memory:
        _check_everything_survived(memory)


def test_a_half_made_copy_is_dropped_and_the_upgrade_redone(tmp_path: Path,
                                                            hashing_embedder: HashingEmbedder) -> None:
    path = tmp_path / "old.db"
    write_v1_folder(path, hashing_embedder)
    client = MilvusClient(uri=str(path))
    client.create_collection(NAME + "__upgrade", dimension=8)  # a crash during the copy left this behind
    client.close()
    with _open(path, hashing_embedder) as memory:
        _check_everything_survived(memory)


def _partitions_of(memory: Memory) -> dict[str, set[str]]:
    """Which partition each kind of row is in: what a collection's layout is, read from Milvus."""
    client: Any = memory.store._client  # type: ignore[attr-defined]
    return {part: {row["kind"] for row in client.query(NAME, filter="", output_fields=["kind"],
                                                         partition_names=[part])}
            for part in client.list_partitions(NAME)}


def test_facts_have_a_partition_of_their_own_and_older_collections_keep_theirs(
        tmp_path: Path, hashing_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = tmp_path / "new.db"
    with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(fresh))), embedder=hashing_embedder,
                llm=ScriptedModel(facts=["Bob owns a red bicycle"])) as memory:
        memory.add("Bob: I own a red bicycle", user_id="bob")
        assert _partitions_of(memory) == {"_default": {"episode"}, "facts": {"fact"}}
    # A collection of the release before (no facts partition) is opened as it is and keeps
    # writing facts beside its messages: reads, updates and deletes find them there.
    old = tmp_path / "old.db"
    original = milvus.MilvusStore._create
    monkeypatch.setattr(milvus.MilvusStore, "_create", lambda self, name, facts_apart=True: original(
        self, name, facts_apart=False))
    with _open(old, hashing_embedder) as memory:
        memory.add("Bob: hello", user_id="bob", infer=False)
    monkeypatch.setattr(milvus.MilvusStore, "_create", original)
    with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(old))), embedder=hashing_embedder,
                llm=ScriptedModel(facts=["Bob owns a red bicycle"])) as memory:
        memory.add("Bob: I own a red bicycle", user_id="bob")
        # ... and its contexts (context.py: "hello" was said just before), keys as the facts are.
        assert _partitions_of(memory) == {"_default": {"episode", "fact", "context"}}
        fact = next(r for r in memory.get_all(user_id="bob")["results"] if r["kind"] == "fact")
        memory.update(fact["id"], "Bob owns a blue bicycle")
        assert memory.search("blue bicycle", user_id="bob")["results"][0]["memory"] == "Bob owns a blue bicycle"
        memory.delete(fact["id"])
        assert all(r["kind"] == "episode" for r in memory.get_all(user_id="bob")["results"])
        memory.reset()  # a collection made anew is made the current way
        memory.add("Bob: I own a red bicycle", user_id="bob")
        assert _partitions_of(memory) == {"_default": {"episode"}, "facts": {"fact"}}
