"""The vector store: Milvus through pymilvus, as a Milvus Lite folder or a server.

One code path serves both. A local path is a Milvus Lite data folder (pymilvus
starts Milvus Lite's engine behind a loopback gRPC thread); an ``http(s)://``
uri is a Milvus server or Zilliz Cloud.

Why the flush policy below exists: Milvus Lite searches rows that are not yet
flushed by rebuilding arrays from its memtable on every query, which costs
~16 ms for 700 rows and ~300 ms for 10k, whereas flushed, indexed segments
answer in a few ms. Flushing a handful of rows costs ~7 ms. So a Lite store
flushes once before the first vector search that follows a write, and before a
scalar read once enough rows are pending; searches in a steady state never
touch the memtable. Compaction of the small segments this creates runs in Lite's
background worker. A server manages its own segments, so none of this applies.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localmem.config import VectorStoreConfig
from localmem.errors import SchemaMismatchError, StoreError, StoreLockedError
from localmem.filters import build_expression, literal
from localmem.protocols import EmbedderIdentity, Vectors
from localmem.records import MAX_SCOPE_ID_LENGTH, SCOPE_KEYS, MemoryRecord, Scope, SearchHit
from localmem.vector_stores import lite
from localmem.vector_stores.blas import single_threaded_blas

SCHEMA_VERSION = "1"
_PROP_SCHEMA = "localmem.schema_version"
_PROP_EMBEDDER = "localmem.embedder"
# Milvus caps one query's result window (offset + limit) at 16384.
_QUERY_CAP = 16384
# Pending (unflushed) rows above which scalar reads flush first: below it the
# memtable scan is cheaper than a flush (measured: +100 rows adds ~2 ms).
_FLUSH_BEFORE_QUERY_ROWS = 256
_HNSW_EF = 256
_IDS_PER_CALL = 1000
# Calls after whose failure a Lite store reloads its folder (see MilvusStore._reload).
_WRITES = frozenset({"insert", "upsert", "delete", "flush", "reset"})
_RECORD_FIELDS = ["id", "memory", "hash", *SCOPE_KEYS, "metadata", "created_at", "updated_at"]


class MilvusStore:
    """Memories in one Milvus collection; implements protocols.VectorStore."""

    def __init__(self, config: VectorStoreConfig, embedder: EmbedderIdentity) -> None:
        self.config = config
        self.embedder = embedder
        self._name = config.collection_name
        self._lite = config.is_local_file
        self._lock = threading.Lock()
        self._pending = 0  # rows written since the last flush (Lite only)
        self._dirty = False
        self._closed = False
        self._stored_index_type: str | None = None  # set when an existing collection is opened
        self._broken: str | None = None  # why this handle refuses work (a failed write it could not recover)
        self._client = self._connect()
        try:
            if self._client.has_collection(self._name):
                self._check_existing()
            else:
                self._create()
            self._client.load_collection(self._name)
        except StoreError:
            self._disconnect()
            raise
        except Exception as exc:
            self._disconnect()
            raise StoreError(f"cannot open collection {self._name!r} at {self._where}: {exc}") from exc

    # -- protocol ---------------------------------------------------------------
    @property
    def metric(self) -> str:
        return self.config.metric_type

    @property
    def index_type(self) -> str:
        """The vector index of a new collection.

        Milvus Lite's FLAT index is a brute-force scan over the rows that pass
        the filter, and every memory search is filtered by scope: so a search
        is exact and costs in proportion to that scope's size, not the
        collection's. HNSW there is approximate under selective filters
        (benchmarks/: recall 0.45-0.57 at 1% selectivity with ef=64). A server
        gets AUTOINDEX, its own tuned choice.
        """
        return self._stored_index_type or self.config.index_type or ("FLAT" if self._lite else "AUTOINDEX")

    @property
    def lite_path(self) -> Path | None:
        """The Milvus Lite data folder, or None for a server."""
        return Path(self.config.uri).expanduser().resolve() if self._lite else None

    def insert(self, records: Sequence[MemoryRecord], vectors: Vectors) -> None:
        self._write("insert", records, vectors)

    def upsert(self, records: Sequence[MemoryRecord], vectors: Vectors) -> None:
        self._write("upsert", records, vectors)

    def get(self, ids: Sequence[str]) -> list[MemoryRecord]:
        by_id = {row["id"]: _to_record(row) for row in self._rows_by_id(ids, _RECORD_FIELDS)}
        return [by_id[i] for i in ids if i in by_id]

    def delete(self, ids: Sequence[str]) -> None:
        for chunk in _chunks(ids):
            # Our own escaped expression, never pymilvus's ids= (which quotes string keys without escaping).
            self._call("delete", lambda chunk=chunk: self._client.delete(self._name, filter=_ids_expression(chunk)))
            self._mark_written(len(chunk))

    def search(self, vector: Vectors, scope: Scope, filters: dict[str, Any] | None,
               limit: int) -> list[SearchHit]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        self._check_dims(query.shape[0])
        expression = build_expression(scope, filters)
        # Lite scores in this process: see blas.py for why one BLAS thread is faster.
        threads = single_threaded_blas() if self._lite else contextlib.nullcontext()
        with threads:
            result = self._call("search", lambda: self._client.search(
                self._name, data=[query.tolist()], filter=expression, limit=limit,
                output_fields=_RECORD_FIELDS, anns_field="vector",
                search_params=self._search_params(limit)), flush=self._dirty)
        return [SearchHit(record=_to_record(hit["entity"] | {"id": hit["id"]}),
                          score=self._score(float(hit["distance"])), distance=float(hit["distance"]))
                for hit in result[0]]

    def list(self, scope: Scope, filters: dict[str, Any] | None, limit: int) -> list[MemoryRecord]:
        rows = self._query(build_expression(scope, filters), _RECORD_FIELDS, limit)
        records = [_to_record(row) for row in rows]
        # Oldest first, as a person reading a memory list expects; ids break ties stably.
        return sorted(records, key=lambda r: (r.created_at, r.id))

    def get_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        return {row["id"]: np.asarray(row["vector"], dtype=np.float32)
                for row in self._rows_by_id(ids, ["id", "vector"])}

    def find_by_hash(self, hashes: Sequence[str], scope: Scope) -> builtins.list[MemoryRecord]:
        if not hashes:
            return []
        # Exactly this scope: an unset key must be unset on the row too.
        parts = [f"{key} == {literal(getattr(scope, key) or '')}" for key in SCOPE_KEYS]
        parts.append(f"hash in [{', '.join(literal(h) for h in hashes)}]")
        rows = self._query(" and ".join(parts), _RECORD_FIELDS, _QUERY_CAP)
        return [_to_record(row) for row in rows]

    def iterate(self, *, with_vectors: bool = False,
                batch_size: int = 1000) -> Iterator[tuple[MemoryRecord, Vectors | None]]:
        """Every memory in the collection, page by page (for export; no 16384-row cap)."""
        fields = [*_RECORD_FIELDS, "vector"] if with_vectors else _RECORD_FIELDS
        with _quiet_pymilvus():
            iterator = self._call("query", lambda: self._client.query_iterator(
                self._name, batch_size=batch_size, filter="", output_fields=fields), flush=self._dirty)
        try:
            while True:
                page = self._call("query", iterator.next)
                if not page:
                    return
                for row in page:
                    vector = np.asarray(row["vector"], dtype=np.float32) if with_vectors else None
                    yield _to_record(row), vector
        finally:
            iterator.close()

    def count(self) -> int:
        rows = self._query("", ["count(*)"], None)
        return int(rows[0]["count(*)"]) if rows else 0

    def reset(self) -> None:
        """Drop the collection and create it empty, with the same schema."""
        def run() -> None:
            self._client.drop_collection(self._name)
            self._create()
            self._client.load_collection(self._name)
        self._call("reset", run)
        self._pending, self._dirty = 0, False

    def flush(self) -> None:
        """Persist pending rows into indexed segments (Lite); a no-op when nothing is pending."""
        self._call("flush", self._flush_locked)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                # Reopening is faster when nothing waits in the memtable to be replayed; a failure here
                # loses nothing (Lite's WAL holds the rows), so it must not keep the folder locked.
                if self._broken is None:
                    with contextlib.suppress(Exception):
                        self._flush_locked()
            finally:
                self._disconnect()

    # -- internals --------------------------------------------------------------
    @property
    def _where(self) -> str:
        return str(self.lite_path) if self._lite else self.config.uri

    def _connect(self) -> Any:
        from pymilvus import MilvusClient

        kwargs: dict[str, Any] = {}
        if self.config.token:
            kwargs["token"] = self.config.token
        if self.config.db_name:
            kwargs["db_name"] = self.config.db_name
        if not self._lite:
            try:
                return MilvusClient(uri=self.config.uri, **kwargs)
            except Exception as exc:
                raise StoreError(f"cannot connect to Milvus at {self.config.uri}: {exc}") from exc
        path = self.lite_path
        assert path is not None
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path} exists but is not a Milvus Lite 3 data folder (Milvus Lite 2.x .db files are "
                             "not readable by 3.x); choose another path or move that file away")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            client = MilvusClient(uri=str(path), **kwargs)
            lite.opened(path)
            return client
        except Exception as exc:
            if is_locked_by_another_process(path):
                raise StoreLockedError(f"{path} is open in another process (Milvus Lite allows one process per "
                                       "data folder); close it there, or use a Milvus server uri to share a store"
                                       ) from exc
            raise StoreError(f"cannot open Milvus Lite data folder {path}: {exc}") from exc

    def _disconnect(self) -> None:
        """Close the client; on Lite, the last store of this process on the folder also stops its engine."""
        try:
            self._client.close()
        finally:
            if self.lite_path is not None:
                lite.closed(self.lite_path)

    def _reload(self, cause: BaseException) -> None:
        """After a failed write, reopen the Lite folder so nothing is served from a damaged in-memory view.

        Measured on a full disk (tests/test_store_lifecycle.py): a failed flush drops its rows from
        the engine's memory though they are in the WAL on disk (hidden until a restart), and a failed
        insert leaves a torn batch in the WAL, after which rows appended to that file are lost when it
        is replayed. A reload replays the WAL into memory and sends later writes to a fresh WAL file.
        If it fails too, this handle refuses all work until the store is opened again.
        """
        path = self.lite_path
        if path is None:
            return  # a server owns its segments and recovers them itself
        try:
            if lite.shared(path):
                raise StoreError("another store of this process uses the same folder")
            self._disconnect()
            self._client = self._connect()
            self._client.load_collection(self._name)
            self._pending, self._dirty = 0, True  # what the memtable holds after the reload is unknown
        except Exception as exc:
            self._broken = (f"the store at {self._where} failed a write ({_reason(cause)}) and could not be "
                            f"reloaded ({_reason(exc)}); free the disk or fix the cause, then reopen Memory")

    def _create(self) -> None:
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.embedder.dims)
        schema.add_field("memory", DataType.VARCHAR, max_length=65535)
        schema.add_field("hash", DataType.VARCHAR, max_length=64)
        for key in SCOPE_KEYS:
            # "" means unset: Milvus Lite cannot filter on NULL scalars portably.
            schema.add_field(key, DataType.VARCHAR, max_length=MAX_SCOPE_ID_LENGTH * 4)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("created_at", DataType.VARCHAR, max_length=64)
        schema.add_field("updated_at", DataType.VARCHAR, max_length=64)
        index = self._client.prepare_index_params()
        # Build parameters are left to Milvus's defaults (HNSW M=16/efConstruction=200, IVF nlist=128).
        index.add_index(field_name="vector", index_type=self.index_type, metric_type=self.metric)
        self._client.create_collection(
            self._name, schema=schema, index_params=index, consistency_level="Strong",
            properties={_PROP_SCHEMA: SCHEMA_VERSION, _PROP_EMBEDDER: json.dumps(self.embedder.to_dict())})

    def _check_existing(self) -> None:
        """Refuse to mix vectors of another size, model or metric into an existing collection."""
        info = self._client.describe_collection(self._name)
        fields = {f["name"]: f for f in info.get("fields", [])}
        where = f"collection {self._name!r} at {self._where}"
        vector = fields.get("vector")
        missing = {"id", "vector", "memory", "hash", "metadata", *SCOPE_KEYS} - set(fields)
        if vector is None or missing:
            raise SchemaMismatchError(f"{where} was not created by localmem (missing fields: {sorted(missing)}); "
                                      "choose another collection_name")
        dims = int(vector.get("params", {}).get("dim", 0))
        if dims != self.embedder.dims:
            raise SchemaMismatchError(
                f"{where} holds {dims}-d vectors but the embedder {self.embedder.name!r} makes {self.embedder.dims}-d "
                "ones; use the embedder that filled it, another collection_name, or `localmem export`/`import` "
                "to re-embed")
        stored = info.get("properties", {}).get(_PROP_EMBEDDER)
        if stored:
            name = json.loads(stored).get("name")
            if name != self.embedder.name:
                raise SchemaMismatchError(
                    f"{where} was filled by embedder {name!r}, not {self.embedder.name!r}: their vectors are not "
                    "comparable; use that embedder, another collection_name, or `localmem export`/`import` "
                    "to re-embed")
        metric, self._stored_index_type = self._stored_index()
        if metric is not None and metric != self.metric:
            raise SchemaMismatchError(f"{where} is indexed with metric {metric}, but metric_type={self.metric} was "
                                      f"asked for; set metric_type={metric!r} or use another collection_name")

    def _stored_index(self) -> tuple[str | None, str | None]:
        """(metric, index type) of the existing collection's vector index."""
        for name in self._client.list_indexes(self._name):
            index = self._client.describe_index(self._name, name)
            if index.get("field_name") == "vector":
                return str(index.get("metric_type")), str(index.get("index_type"))
        return None, None

    def _check_dims(self, dims: int) -> None:
        if dims != self.embedder.dims:
            raise SchemaMismatchError(f"vector has {dims} dimensions; collection {self._name!r} holds "
                                      f"{self.embedder.dims}")

    def _write(self, op: str, records: Sequence[MemoryRecord], vectors: Vectors) -> None:
        if not records:
            return
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(records):
            raise StoreError(f"{op}: {len(records)} records but vectors of shape {matrix.shape}")
        self._check_dims(matrix.shape[1])
        rows = [_to_row(r, v) for r, v in zip(records, matrix.tolist(), strict=True)]
        method = getattr(self._client, op)
        self._call(op, lambda: method(self._name, rows))
        self._mark_written(len(rows))

    def _query(self, expression: str, fields: builtins.list[str], limit: int | None) -> builtins.list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"filter": expression, "output_fields": fields}
        if limit is not None:
            kwargs["limit"] = min(limit, _QUERY_CAP)
        rows: builtins.list[dict[str, Any]] = self._call(
            "query", lambda: self._client.query(self._name, **kwargs),
            flush=self._pending >= _FLUSH_BEFORE_QUERY_ROWS)
        return rows

    def _rows_by_id(self, ids: Sequence[str], fields: builtins.list[str]) -> builtins.list[dict[str, Any]]:
        rows: builtins.list[dict[str, Any]] = []
        for chunk in _chunks(ids):
            rows += self._call("get", lambda chunk=chunk: self._client.query(
                self._name, filter=_ids_expression(chunk), output_fields=fields, limit=len(chunk)),
                flush=self._pending >= _FLUSH_BEFORE_QUERY_ROWS)
        return rows

    def _mark_written(self, rows: int) -> None:
        if self._lite:
            self._pending += rows
            self._dirty = True

    def _flush_locked(self) -> None:
        if self._dirty:
            self._client.flush(self._name)
            self._pending, self._dirty = 0, False

    def _call(self, what: str, fn: Any, *, flush: bool = False) -> Any:
        """Run one client call under the lock, mapping pymilvus errors into StoreError."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the store at {self._where} is closed")
            if self._broken is not None:
                raise StoreError(self._broken)
            writing = what in _WRITES
            try:
                if flush:
                    writing = True  # a flush writes segments: its failure is a write failure
                    self._flush_locked()
                    writing = what in _WRITES
                return fn()
            except StoreError:
                raise
            except Exception as exc:
                if writing:
                    self._reload(exc)
                raise StoreError(f"Milvus {what} on collection {self._name!r} failed: {_reason(exc)}") from exc

    def _search_params(self, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.index_type in ("HNSW", "AUTOINDEX"):
            # A wide beam keeps HNSW close to exact when the scope filter drops most neighbours.
            params["ef"] = max(_HNSW_EF, limit)
        return {"metric_type": self.metric, "params": params}

    def _score(self, distance: float) -> float:
        """One meaning for every metric: higher is more similar.

        COSINE and IP: Milvus already returns the similarity. L2: Milvus returns
        the *squared* distance d; 1 - d/2 equals the cosine for unit vectors, so
        a threshold means the same under COSINE and L2 with normalised embeddings.
        """
        if self.metric == "L2":
            return 1.0 - distance / 2.0
        return distance


def _ids_expression(ids: Sequence[str]) -> str:
    """``id in [...]`` with every id rendered by literal(): quoted and escaped, whatever it holds."""
    return f"id in [{', '.join(literal(i) for i in ids)}]"


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    # Keeps each expression short and each result under the query window.
    for start in range(0, len(ids), _IDS_PER_CALL):
        yield list(ids[start:start + _IDS_PER_CALL])


def _to_row(record: MemoryRecord, vector: list[float]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": record.id,
        "vector": vector,
        "memory": record.memory,
        "hash": record.hash,
        "metadata": record.metadata,
        "created_at": record.created_at,
        "updated_at": record.updated_at or "",
    }
    for key in SCOPE_KEYS:
        row[key] = getattr(record.scope, key) or ""
    return row


def _to_record(row: dict[str, Any]) -> MemoryRecord:
    scope = Scope(**{key: row.get(key) or None for key in SCOPE_KEYS})
    metadata = row.get("metadata") or {}
    if isinstance(metadata, (str, bytes)):
        metadata = json.loads(metadata)
    return MemoryRecord(id=row["id"], memory=row["memory"], hash=row["hash"], scope=scope, metadata=metadata,
                        created_at=row.get("created_at") or "", updated_at=row.get("updated_at") or None)


@contextlib.contextmanager
def _quiet_pymilvus() -> Iterator[None]:
    """pymilvus warns on every iterator page that Milvus Lite has no server timestamp; that is expected."""
    logger = logging.getLogger("pymilvus")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__


def is_locked_by_another_process(path: Path) -> bool:
    """Probe Milvus Lite's LOCK file; only called after opening failed."""
    lock = path / "LOCK"
    if sys.platform == "win32" or not lock.exists():
        return False
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
