"""MilvusStore on a real Milvus Lite folder: schema checks, locking, scores, flush policy."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from localmem import SchemaMismatchError, StoreError, StoreLockedError
from localmem.config import VectorStoreConfig
from localmem.embedders.fake import HashingEmbedder
from localmem.protocols import EmbedderIdentity
from localmem.records import MemoryRecord, Scope, now_iso, text_hash
from localmem.vector_stores import milvus_candidates
from localmem.vector_stores.milvus import MilvusStore
from localmem.vector_stores.milvus_client import is_locked_by_another_process

pytestmark = pytest.mark.slow

EMBEDDER = HashingEmbedder(dims=64)


def _record(text: str, scope: Scope, **metadata: object) -> MemoryRecord:
    return MemoryRecord(id=str(uuid.uuid4()), memory=text, hash=text_hash(text), scope=scope,
                        metadata=dict(metadata), created_at=now_iso())


def _store(path: Path, identity: EmbedderIdentity = EMBEDDER.identity, **config: object) -> MilvusStore:
    return MilvusStore(VectorStoreConfig(uri=str(path), **config), identity)  # type: ignore[arg-type]


def _fill(store: MilvusStore, texts: list[str], scope: Scope) -> list[MemoryRecord]:
    records = [_record(t, scope) for t in texts]
    store.insert(records, EMBEDDER.embed(texts))
    return records


TEXTS = ["plays tennis on weekends", "has a cat named Luna", "works as a nurse", "likes green tea"]


def test_round_trip_of_every_field(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    scope = Scope(user_id="ü-ser \"quoted\"", agent_id="a1")
    record = MemoryRecord(id="id-1", memory="Café ☕ with \"quotes\" and\nnewlines", hash=text_hash("x"),
                          scope=scope, metadata={"n": 1, "tags": ["a", "b"], "nested": {"k": None}},
                          created_at=now_iso(), updated_at=now_iso())
    store.insert([record], EMBEDDER.embed([record.memory]))
    assert store.get(["id-1"]) == [record]
    assert store.records(scope, None, 10) == [record]
    np.testing.assert_allclose(store.get_vectors(["id-1"])["id-1"], EMBEDDER.embed([record.memory])[0], rtol=1e-6)
    store.close()


def test_search_sees_writes_immediately_and_flushes_once(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    scope = Scope(user_id="u")
    records = _fill(store, TEXTS, scope)
    assert store._dirty
    hits = store.search(EMBEDDER.embed(["tennis weekends"])[0], scope, None, 2)
    assert hits[0].record.id == records[0].id
    assert not store._dirty  # the search flushed the pending rows first
    store.delete([records[0].id])
    hits = store.search(EMBEDDER.embed(["tennis weekends"])[0], scope, None, 4)
    assert records[0].id not in {h.record.id for h in hits}
    assert store.count() == 3
    store.close()


def test_find_by_hash_matches_the_exact_scope_only(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    _fill(store, ["same text"], Scope(user_id="u"))
    _fill(store, ["same text"], Scope(user_id="u", agent_id="a"))
    assert len(store.find_by_hash([text_hash("same text")], Scope(user_id="u"))) == 1
    assert len(store.find_by_hash([text_hash("same text")], Scope(user_id="u", agent_id="a"))) == 1
    assert store.find_by_hash([text_hash("same text")], Scope(user_id="v")) == []
    assert store.find_by_hash([text_hash("other")], Scope(user_id="u")) == []
    store.close()


@pytest.mark.parametrize("metric", ["COSINE", "L2", "IP"])
def test_scores_mean_the_same_for_every_metric_on_unit_vectors(tmp_path: Path, metric: str) -> None:
    store = _store(tmp_path / "s.db", metric_type=metric)
    scope = Scope(user_id="u")
    _fill(store, TEXTS, scope)
    query = EMBEDDER.embed(["green tea please"])[0]
    hits = store.search(query, scope, None, 4)
    exact = EMBEDDER.embed([h.record.memory for h in hits]) @ query
    # Higher is better under every metric, and for unit vectors the score is the cosine.
    np.testing.assert_allclose([h.score for h in hits], exact, atol=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    if metric == "L2":  # the raw distance is Milvus's squared L2
        np.testing.assert_allclose([h.distance for h in hits], 2 - 2 * exact, atol=1e-4)
    store.close()


def test_reopen_refuses_other_dims_model_or_metric(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = _store(path)
    _fill(store, TEXTS, Scope(user_id="u"))
    store.close()
    with pytest.raises(SchemaMismatchError, match=r"64-d vectors.*32-d"):
        _store(path, HashingEmbedder(dims=32).identity)
    with pytest.raises(SchemaMismatchError, match="filled by embedder 'hashing-64'"):
        _store(path, EmbedderIdentity(name="another-model", dims=64, normalized=True))
    with pytest.raises(SchemaMismatchError, match="metric COSINE"):
        _store(path, metric_type="L2")
    reopened = _store(path)
    assert reopened.count() == len(TEXTS)  # the refusals left the data alone
    reopened.close()


def test_a_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = _store(path)
    _fill(store, TEXTS, Scope(user_id="u"))
    code = textwrap.dedent(f"""
        from localmem.config import VectorStoreConfig
        from localmem.embedders.fake import HashingEmbedder
        from localmem.errors import StoreLockedError
        from localmem.vector_stores.milvus import MilvusStore
        try:
            MilvusStore(VectorStoreConfig(uri={str(path)!r}), HashingEmbedder(dims=64).identity)
        except StoreLockedError as exc:
            print("LOCKED", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOCKED" in out.stdout and "another process" in out.stdout, out.stderr[-2000:]
    assert store.count() == len(TEXTS)
    store.close()
    assert StoreLockedError.__mro__[1] is StoreError


def test_a_plain_file_at_the_path_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.write_bytes(b"SQLite format 3\x00 pretend milvus-lite 2.x file")
    with pytest.raises(StoreError, match="not a Milvus Lite 3 data folder"):
        _store(path)
    assert path.read_bytes().startswith(b"SQLite format 3")


def test_wrong_vector_size_is_refused_before_writing(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    record = _record("x", Scope(user_id="u"))
    with pytest.raises(SchemaMismatchError, match="32 dimensions"):
        store.insert([record], np.zeros((1, 32), dtype=np.float32))
    with pytest.raises(StoreError, match="1 records but vectors"):
        store.insert([record], np.zeros((2, 64), dtype=np.float32))
    assert store.count() == 0
    store.close()


def test_reset_empties_and_keeps_working(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db", index_type="FLAT")
    _fill(store, TEXTS, Scope(user_id="u"))
    store.reset()
    assert store.count() == 0
    _fill(store, TEXTS[:1], Scope(user_id="u"))
    assert [h.record.memory for h in store.search(EMBEDDER.embed([TEXTS[0]])[0], Scope(user_id="u"), None, 3)] == \
        TEXTS[:1]
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count()


def test_lite_defaults_to_exact_flat_and_reopen_keeps_the_stored_index(tmp_path: Path) -> None:
    store = _store(tmp_path / "flat.db")
    assert store.index_type == "FLAT"
    store.close()
    hnsw = _store(tmp_path / "hnsw.db", index_type="HNSW")
    _fill(hnsw, TEXTS, Scope(user_id="u"))
    hnsw.close()
    reopened = _store(tmp_path / "hnsw.db")  # no index_type given: the collection's own is used
    assert reopened.index_type == "HNSW"
    assert milvus_candidates.search_params(reopened.index_type, reopened.metric, 10)["params"]["ef"] >= 10
    assert reopened.search(EMBEDDER.embed([TEXTS[1]])[0], Scope(user_id="u"), None, 1)[0].record.memory == TEXTS[1]
    reopened.close()


def test_a_refused_write_is_one_store_error_and_nothing_on_stderr(tmp_path: Path,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path / "s.db")
    capfd.readouterr()
    too_long = _record("x" * (store.limits.max_text_bytes + 1), Scope(user_id="u"))
    with pytest.raises(StoreError, match="insert"):
        store.insert([too_long], EMBEDDER.embed(["x"]))
    err = capfd.readouterr().err
    assert "Traceback" not in err and "RPC error" not in err, err
    store.close()


def test_closing_the_last_store_of_a_folder_stops_its_lite_engine(tmp_path: Path) -> None:
    # MilvusClient.close() alone left Lite's engine (its LOCK, its background compaction) running until
    # the process exited: removing the folder then raised FileNotFoundError in the compaction thread.
    path = tmp_path / "s.db"
    first, second = _store(path), _store(path)
    _fill(first, TEXTS, Scope(user_id="u"))
    first.close()
    assert is_locked_by_another_process(path)  # the second store still uses the engine
    assert [h.record.memory for h in second.search(EMBEDDER.embed([TEXTS[0]])[0], Scope(user_id="u"), None, 1)
            ] == [TEXTS[0]]
    second.close()
    assert not is_locked_by_another_process(path)  # engine stopped, its work drained, the LOCK released
    shutil.rmtree(path)
    reopened = _store(path)  # a fresh engine on a fresh folder
    assert reopened.count() == 0
    reopened.close()


def test_lite_clients_send_no_keepalive_pings(tmp_path: Path) -> None:
    # Lite's in-process gRPC server keeps gRPC's default ping policy (one ping per 5 min without data);
    # pymilvus' 10 s keepalive earned GOAWAY too_many_pings log lines on stderr in idle processes.
    store = _store(tmp_path / "s.db")
    try:
        options = store._client._get_connection()._grpc_options  # what the channel was built with
        assert options["grpc.keepalive_time_ms"] == 2**31 - 1 and options["grpc.keepalive_permit_without_calls"] == 0
    finally:
        store.close()
