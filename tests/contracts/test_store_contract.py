"""Every VectorStore operation, the same assertions on each backend (Milvus Lite, a server, the numpy reference)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from localmem.errors import SchemaMismatchError
from localmem.protocols import EmbedderIdentity, Vectors, VectorStore
from localmem.records import EPISODE, FACT, Kind, MemoryRecord, Scope, text_hash
from localmem.vector_stores import milvus, milvus_migrations
from localmem.vector_stores.milvus import MilvusStore
from tests.contracts.conftest import DIMS, REFERENCE, StoreFactory

ALICE = Scope("alice")
BOB = Scope("bob", agent_id="helper")


def _record(rid: str, text: str, scope: Scope = ALICE, second: int = 0, **metadata: object) -> MemoryRecord:
    return MemoryRecord(id=rid, memory=text, hash=text_hash(text), scope=scope, metadata=dict(metadata),
                        created_at=f"2026-01-01T00:00:{second:02d}+00:00")


def _unit(*rows: list[float]) -> Vectors:
    matrix = np.zeros((len(rows), DIMS), dtype=np.float32)
    for i, row in enumerate(rows):
        matrix[i, :len(row)] = row
    unit: Vectors = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return unit


def test_the_store_meets_the_protocol(make_store: StoreFactory) -> None:
    store = make_store()
    assert isinstance(store, VectorStore)
    assert store.limits.max_text_bytes > 0 and store.limits.max_results > 0


def test_insert_get_round_trips_every_field_and_keeps_the_asked_order(make_store: StoreFactory) -> None:
    store = make_store()
    first = MemoryRecord(id="a", memory='Café ☕ "quoted"\nline', hash=text_hash("x"), scope=BOB,
                         metadata={"n": 1, "tags": ["a", "b"], "nested": {"k": None}},
                         created_at="2026-01-01T00:00:00+00:00", updated_at="2026-01-02T00:00:00+00:00")
    second = _record("b", "second")
    store.insert([first, second], _unit([1.0], [0.0, 1.0]))
    assert store.get(["b", "missing", "a"]) == [second, first]
    assert store.get([]) == []
    vectors = store.get_vectors(["a", "missing"])
    assert set(vectors) == {"a"}
    np.testing.assert_allclose(vectors["a"], _unit([1.0])[0], rtol=1e-6)


def test_upsert_replaces_text_metadata_and_vector(make_store: StoreFactory) -> None:
    store = make_store()
    store.insert([_record("a", "old", tag="x")], _unit([1.0]))
    new = _record("a", "new", tag="y")
    store.upsert([new], _unit([0.0, 1.0]))
    assert store.get(["a"]) == [new]
    assert store.count() == 1
    hit = store.search(_unit([0.0, 1.0]), ALICE, None, 5)[0]
    assert hit.record == new and hit.score == pytest.approx(1.0, abs=1e-5)


def test_delete_removes_only_what_it_names(make_store: StoreFactory) -> None:
    store = make_store()
    store.insert([_record("a", "one"), _record("b", "two")], _unit([1.0], [0.0, 1.0]))
    store.delete(["a", "never-there"])
    store.delete([])
    assert store.get(["a", "b"]) == [_record("b", "two")]
    assert [h.record.id for h in store.search(_unit([1.0]), ALICE, None, 5)] == ["b"]


def test_search_ranks_by_similarity_within_the_scope(make_store: StoreFactory) -> None:
    store = make_store()
    records = [_record("near", "near"), _record("mid", "mid"), _record("far", "far"),
               _record("other", "other scope", scope=BOB)]
    store.insert(records, _unit([1.0], [1.0, 1.0], [0.0, 1.0], [1.0]))
    hits = store.search(_unit([1.0]), ALICE, None, 10)
    assert [h.record.id for h in hits] == ["near", "mid", "far"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5) and hits[1].score == pytest.approx(0.7071, abs=1e-3)
    assert [h.record.id for h in store.search(_unit([1.0]), ALICE, None, 2)] == ["near", "mid"]
    assert [h.record.id for h in store.search(_unit([1.0]), Scope(agent_id="helper"), None, 10)] == ["other"]


def test_a_search_sees_every_write_made_after_the_scope_was_searched(make_store: StoreFactory) -> None:
    """On Lite the first search of a scope copies it into memory (scopes.py): later writes must show."""
    store = make_store()
    store.insert([_record("a", "apple pie"), _record("b", "banana bread")], _unit([1.0], [0.0, 1.0]))
    assert [h.record.id for h in store.search(_unit([1.0]), ALICE, None, 5, text="apple")][:1] == ["a"]
    store.insert([_record("c", "cherry tart"), _record("d", "elsewhere", scope=BOB)],
                 _unit([0.0, 0.0, 1.0], [1.0]))
    moved = _record("a", "quince jam")
    store.upsert([moved], _unit([0.0, 0.0, 0.0, 1.0]))
    store.delete(["b"])
    hits = store.search(_unit([0.0, 0.0, 1.0]), ALICE, None, 5, text="cherry")
    assert [h.record.id for h in hits] == ["c", "a"]
    assert hits[1].record == moved and store.get(["a", "b"]) == [moved]
    assert [h.record.id for h in store.search(_unit([0.0, 0.0, 0.0, 1.0]), ALICE, None, 1)] == ["a"]
    store.reset()
    assert store.search(_unit([1.0]), ALICE, None, 5, text="apple") == []
    store.insert([_record("e", "apple again")], _unit([1.0]))
    assert [h.record.id for h in store.search(_unit([1.0]), ALICE, None, 5, text="apple")] == ["e"]


def test_list_is_oldest_first_and_honours_the_limit(make_store: StoreFactory) -> None:
    store = make_store()
    records = [_record(f"m{i}", f"text {i}", second=59 - i) for i in range(5)]
    store.insert(records, _unit(*[[1.0, float(i)] for i in range(5)]))
    listed = store.records(ALICE, None, 100)
    assert [r.id for r in listed] == ["m4", "m3", "m2", "m1", "m0"]
    assert len(store.records(ALICE, None, 3)) == 3
    assert store.records(Scope("nobody"), None, 10) == []


def test_find_by_hash_matches_the_exact_scope_only(make_store: StoreFactory) -> None:
    store = make_store()
    store.insert([_record("a", "same text"), _record("b", "same text", scope=Scope("alice", agent_id="x")),
                  _record("c", "other text")], _unit([1.0], [0.0, 1.0], [0.0, 0.0, 1.0]))
    assert [r.id for r in store.find_by_hash([text_hash("same text")], ALICE)] == ["a"]
    assert [r.id for r in store.find_by_hash([text_hash("same text")], Scope("alice", agent_id="x"))] == ["b"]
    found = store.find_by_hash([text_hash("same text"), text_hash("other text"), "0" * 32], ALICE)
    assert sorted(r.id for r in found) == ["a", "c"]
    assert store.find_by_hash([], ALICE) == []


def test_count_iterate_and_reset(make_store: StoreFactory) -> None:
    store = make_store()
    records = [_record(f"m{i}", f"text {i}", scope=ALICE if i % 2 else BOB) for i in range(7)]
    vectors = _unit(*[[1.0, float(i)] for i in range(7)])
    store.insert(records, vectors)
    assert store.count() == 7
    seen = {r.id: v for r, v in store.iterate(with_vectors=True, batch_size=3) if v is not None}
    assert set(seen) == {r.id for r in records}
    for i, record in enumerate(records):
        np.testing.assert_allclose(seen[record.id], vectors[i], rtol=1e-6)
    assert all(v is None for _, v in store.iterate())
    store.reset()
    assert store.count() == 0 and list(store.iterate()) == []
    store.insert(records[:1], vectors[:1])
    assert store.get([records[0].id]) == records[:1]


def test_a_text_of_the_store_limit_round_trips(make_store: StoreFactory) -> None:
    """The one limit localmem enforces (UTF-8 bytes) must fit every backend."""
    store = make_store()
    limit = store.limits.max_text_bytes
    pair = "é☕"  # 2 + 3 bytes: a server counts bytes, Milvus Lite characters
    text = pair * (limit // 5) + "x" * (limit % 5)
    assert len(text.encode()) == limit
    store.insert([_record("big", text)], _unit([1.0]))
    assert store.get(["big"])[0].memory == text


def test_reopening_keeps_rows_and_refuses_another_embedder(make_store: StoreFactory) -> None:
    store = make_store()
    store.insert([_record("a", "kept")], _unit([1.0]))
    store.close()
    assert make_store().get(["a"]) == [_record("a", "kept")]
    with pytest.raises(SchemaMismatchError, match="16-d"):
        make_store(EmbedderIdentity(name="contract-vectors", dims=16, normalized=True))
    with pytest.raises(SchemaMismatchError, match="other-model"):
        make_store(EmbedderIdentity(name="other-model", dims=DIMS, normalized=True))


def _stored_version(store: MilvusStore) -> str:
    properties: dict[str, str] = store._client.describe_collection(store.config.collection_name)["properties"]
    return properties[milvus_migrations.PROP_SCHEMA]


def test_the_schema_version_is_checked_on_open(make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch,
                                              backend_uri: str) -> None:
    if backend_uri == REFERENCE:
        pytest.skip("Milvus's schema migrations; the reference store keeps nothing on disk")
    store = make_store()
    store.insert([_record("a", "kept")], _unit([1.0]))
    assert _stored_version(store) == str(milvus.SCHEMA_VERSION)
    store.close()
    # An older collection is migrated once, step by step, each step recorded.
    ran: list[str] = []
    monkeypatch.setattr(milvus, "SCHEMA_VERSION", milvus.SCHEMA_VERSION + 1)
    monkeypatch.setitem(milvus_migrations.MIGRATIONS, milvus.SCHEMA_VERSION,
                        lambda client, name, create: ran.append(name))
    store = make_store()
    assert ran == [store.config.collection_name] and _stored_version(store) == str(milvus.SCHEMA_VERSION)
    assert store.get(["a"]) == [_record("a", "kept")]
    store.close()
    store = make_store()
    assert len(ran) == 1  # recorded: not run again
    store.close()
    # A step that does not exist is refused, not skipped.
    monkeypatch.setattr(milvus, "SCHEMA_VERSION", milvus.SCHEMA_VERSION + 1)
    with pytest.raises(SchemaMismatchError, match=f"no migration to version {milvus.SCHEMA_VERSION}"):
        make_store()
    # A newer collection is refused by name and version, untouched.
    newer = milvus.SCHEMA_VERSION - 1  # the version the collection records now
    monkeypatch.setattr(milvus, "SCHEMA_VERSION", newer - 1)
    monkeypatch.setattr(milvus_migrations, "MIGRATIONS", {})
    with pytest.raises(SchemaMismatchError, match=rf"contract_\w+'.* has schema version {newer}, newer than this "
                                                  rf"localmem understands \(version {newer - 1}\)"):
        make_store()


def test_probe_says_what_the_store_holds_without_creating_anything(make_store: StoreFactory,
                                                                   backend_uri: str) -> None:
    from localmem.config import VectorStoreConfig

    if backend_uri == REFERENCE:
        pytest.skip("MilvusStore.probe, for localmem doctor")
    if not backend_uri.startswith("http"):
        health = MilvusStore.probe(VectorStoreConfig(uri=backend_uri))
        assert health.status == "ok" and "created on first use" in health.detail
        assert not Path(backend_uri).exists()
    store = make_store()
    if backend_uri.startswith("http"):  # a Lite folder stays locked by this process until it exits (#14.5)
        health = MilvusStore.probe(VectorStoreConfig(uri=backend_uri))
        assert health.status == "ok" and store.config.collection_name in health.detail
    store.close()
    bad = MilvusStore.probe(VectorStoreConfig(uri="http://127.0.0.1:1"))
    assert bad.status == "fail" and "127.0.0.1:1" in bad.detail


def test_latest_gives_the_newest_of_a_time_window_oldest_first(make_store: StoreFactory) -> None:
    # add(infer=True) reads the messages said before a new one this way (context.py).
    store = make_store()

    def timed(rid: str, timestamp: int, second: int, kind: Kind = EPISODE, scope: Scope = ALICE) -> MemoryRecord:
        return replace(_record(rid, f"said {rid}", scope, second), timestamp=timestamp, kind=kind)

    rows = [timed("a", 100, 0), timed("b", 200, 1), timed("c", 200, 2), timed("d", 300, 3, kind=FACT),
            timed("e", 400, 4), timed("f", 250, 5, scope=BOB)]
    store.insert(rows, _unit(*([1.0, float(i)] for i in range(len(rows)))))
    assert [r.id for r in store.latest(ALICE, 100, 350, 2, kinds=(EPISODE,))] == ["b", "c"]  # ties: creation
    assert [r.id for r in store.latest(ALICE, 100, 350, 5, kinds=(EPISODE,))] == ["a", "b", "c"]
    assert [r.id for r in store.latest(ALICE, 150, 400, 2)] == ["d", "e"]
    assert store.latest(ALICE, 150, 400, 2)[1] == rows[4]
    assert store.latest(ALICE, 500, 600, 2) == [] and store.latest(ALICE, 0, 400, 0) == []
    assert [r.id for r in store.latest(BOB, 0, 1000, 3)] == ["f"]
