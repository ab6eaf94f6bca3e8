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

Ranking is not this module's: it stores rows and draws candidates (milvus_candidates.py), and
the retrieval core (localmem/retrieval/) fuses, groups and scores them. On a Lite folder a
scope's copy in memory answers every search of the scope, filtered or not (retrieval/scopes.py);
on a server Milvus draws the candidates and the client keeps only bounded word statistics. A
server without the BM25 function (Milvus before 2.5) keeps dense search, whose score is the
similarity, and says so once with a LocalmemWarning.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from localmem.config import VectorStoreConfig
from localmem.errors import SchemaMismatchError, StoreError
from localmem.filters import as_filter
from localmem.protocols import EmbedderIdentity, Filters, StoreHealth, StoreLimits, Vectors
from localmem.records import CONTEXT, EPISODE, KINDS, SCOPE_KEYS, Kind, MemoryRecord, Scope, SearchHit
from localmem.retrieval.fusion import Fusion
from localmem.retrieval.keeper import ScopeKeeper
from localmem.retrieval.ranking import groups, messages_deep, rank, rescored, similarity
from localmem.retrieval.scopes import ScopeCache, ScopeIndex
from localmem.retrieval.words import WordStats
from localmem.vector_stores import lite, milvus_candidates, milvus_client, milvus_schema, upgrade
from localmem.vector_stores.blas import single_threaded_blas
from localmem.vector_stores.milvus_client import quiet_pymilvus, reason_of
from localmem.vector_stores.milvus_filters import literal
from localmem.vector_stores.milvus_rows import (
    COPY_FIELDS,
    IDS_PER_CALL,
    RECORD_FIELDS,
    SOURCE_IDS,
    WORD_FIELDS,
    all_of,
    chunks,
    ids_expression,
    kinds_expression,
    ranks_alone,
    select,
    to_record,
    to_row,
)
from localmem.vector_stores.milvus_schema import FACTS_PARTITION, MESSAGES_PARTITION, TEXT_BYTES

# The schema _create() makes; an older collection is migrated on open (milvus_migrations.py;
# 1 -> 2, episodes and BM25, is upgrade.py).
SCHEMA_VERSION = 2
# How long an open waits for another process's creation of the collection to complete.
_CONCURRENT_CREATE_S = 30
# Milvus caps one query's result window (offset + limit) at 16384.
_QUERY_CAP = 16384
LIMITS = StoreLimits(max_text_bytes=TEXT_BYTES, max_results=_QUERY_CAP)
# Pending (unflushed) rows above which scalar reads flush first: below it the
# memtable scan is cheaper than a flush (measured: +100 rows adds ~2 ms).
_FLUSH_BEFORE_QUERY_ROWS = 256
# Pending rows after which a write flushes them (measured: ~7 ms for a handful of rows).
_FLUSH_AFTER_WRITE_ROWS = 1024
# Calls after whose failure a Lite store reloads its folder (see MilvusStore._reload).
_WRITES = frozenset({"insert", "upsert", "delete", "flush", "reset"})
# A scope with more rows than this is not given word statistics of its own (words.py): loading
# them would cost seconds; its BM25 scores are Milvus's.
_WORD_STATS_ROWS = 100_000
# BM25 rows drawn for rescoring, as a multiple of the depth fused: with the same rows added one
# flush per add (infer=True) or 256 per flush (infer=False), 1x left 25 of 118 LoCoMo questions
# with a different top 5, 2x 9 (each of them a fact that shows two messages at once).
_WORD_DRAW = 2

_T = TypeVar("_T")


class MilvusStore:
    """Memories in one Milvus collection; implements protocols.VectorStore."""

    def __init__(self, config: VectorStoreConfig, embedder: EmbedderIdentity,
                 alternatives: Sequence[EmbedderIdentity] = ()) -> None:
        self.config = config
        # The vectors this handle stores and searches: ``embedder`` for a new collection; for an existing
        # one, whichever of ``embedder`` and ``alternatives`` filled it (the caller embeds with that).
        self.embedder = embedder
        self._alternatives = tuple(alternatives)
        self._name = config.collection_name
        self._lite = config.is_local_file
        # Resolved once: every write and duplicate check asks for it (resolve() is a syscall per part), and
        # a relative path keeps meaning the folder it meant at open if the process changes directory.
        self._lite_path = Path(config.uri).expanduser().resolve() if self._lite else None
        self._lock = threading.Lock()
        self._pending = 0  # rows written since the last flush (Lite only)
        self._dirty = False
        self._closed = False
        self._stored_index_type: str | None = None  # set when an existing collection is opened
        self.fusion = Fusion(method=config.fusion, k=config.rrf_k, depth=config.fusion_depth)
        # Whether the collection holds facts (None: not asked yet): a hybrid search keeps them apart then.
        self._holds_facts: bool | None = None
        self._facts_apart = False  # whether facts are written to FACTS_PARTITION (set on open)
        # Per scope searched: BM25 statistics, and on Lite the scope's rows (scopes.py). The lock is
        # taken before self._lock, never inside it: writes hold it around their call so that a
        # scope loaded meanwhile counts a row once.
        self._kept = ScopeKeeper(ScopeCache(config.cache_rows if self._lite else 0),
                                 lambda scope, alone: self._load(scope, alone), lambda: self._alone_on_folder())
        self._broken: str | None = None  # why this handle refuses work (a failed write it could not recover)
        self._client = self._connect()
        self._opened_seen, self._shared_seen = self._lite_clients()  # see _alone_on_folder
        # On a server another process may be creating the collection at this moment: its index comes
        # last (_create), so until it exists loading fails, and the open is tried again.
        deadline = time.monotonic() + (0 if self._lite else _CONCURRENT_CREATE_S)
        while True:
            try:
                self._open_collection(config)
                break
            except StoreError:
                self._disconnect()
                raise
            except Exception as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                self._disconnect()
                raise StoreError(f"cannot open collection {self._name!r} at {self._where}: {exc}") from exc
            except BaseException:
                self._disconnect()  # Ctrl-C during an open: the folder (its engine, its LOCK) is released too
                raise

    def _open_collection(self, config: VectorStoreConfig) -> None:
        upgrade.finish_interrupted(self._client, self._name)
        if self._client.has_collection(self._name):
            self._check_existing()
        else:
            self._create(self._name)
        # Dense only when asked (no warning then), or when the collection has no BM25 field.
        self.hybrid = config.hybrid and milvus_schema.has_bm25(self._client, self._name, self._where)
        self._facts_apart = self._client.has_partition(self._name, FACTS_PARTITION)
        self._client.load_collection(self._name)

    # -- protocol ---------------------------------------------------------------
    @property
    def metric(self) -> str:
        return self.config.metric_type

    @property
    def limits(self) -> StoreLimits:
        return LIMITS

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
        return self._lite_path

    def insert(self, records: Sequence[MemoryRecord], vectors: Vectors) -> None:
        # On a server another process may add the same stable id at the same moment (records.stable_id),
        # and Milvus keeps both rows of a repeated primary key on insert: there, only upsert is safe.
        self._write("insert" if self._lite else "upsert", records, vectors)

    def upsert(self, records: Sequence[MemoryRecord], vectors: Vectors) -> None:
        self._write("upsert", records, vectors)

    def get(self, ids: Sequence[str]) -> list[MemoryRecord]:
        copied = self._kept.records(ids)  # a search's sources, usually: the scope's copy holds them
        if copied is not None:
            return copied
        by_id = {row["id"]: to_record(row) for row in self._rows_by_id(ids, RECORD_FIELDS)}
        return [by_id[i] for i in ids if i in by_id]

    def delete(self, ids: Sequence[str]) -> None:
        with self._kept.lock:
            for chunk in chunks(ids):
                old = self._old_records(chunk)
                # Our own escaped expression, never pymilvus's ids= (which quotes string keys without escaping).
                self._call("delete", lambda chunk=chunk: self._client.delete(self._name,
                                                                             filter=ids_expression(chunk)))
                self._mark_written(len(chunk))
                self._kept.deleted(chunk, old)

    def search(self, vector: Vectors, scope: Scope, filters: Filters, limit: int, *,
               text: str | None = None, kinds: Sequence[Kind] | None = None) -> list[SearchHit]:
        """Nearest memories; with ``text`` (and a BM25-capable store) dense and BM25 fused.

        Without filters, a scope copied in memory (scopes.py) answers; else Milvus does."""
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        self._check_dims(query.shape[0])
        hybrid = text is not None and bool(text.strip()) and self.hybrid
        where = as_filter(filters)
        # Lite scores in this process: see blas.py for why one BLAS thread is faster.
        threads = single_threaded_blas() if self._lite else contextlib.nullcontext()
        stats = None
        if hybrid or self._lite:  # a hybrid search needs the word statistics
            with self._kept.scope(scope) as index:  # the lock is held while the copy answers: no write changes it
                if index is not None and index.full:  # one engine on Lite, filtered or not
                    with threads:
                        return index.search(self.fusion, self.metric, query, text if hybrid else None, limit,
                                            KINDS if kinds is None and not hybrid else kinds, where)
                stats = index.stats if index is not None else None
        # Without fusion rows come back as they are: contexts, only keys to their message, stay out.
        shown = kinds_expression(kinds) if kinds is not None or hybrid else f"kind != {literal(CONTEXT)}"
        expression = all_of(select(scope, filters), shown)
        if hybrid:
            assert text is not None
            with threads:
                hits: list[SearchHit] = self._call(
                    "hybrid search",
                    lambda: self._hybrid(query, text, expression, limit, split=kinds is None, stats=stats),
                    flush=self._dirty)
            return hits
        with threads:
            result = self._call("search", lambda: self._dense(query, expression, limit), flush=self._dirty)
        hits = []
        for hit in result:
            distance = float(hit["distance"])
            score = similarity(self.metric, distance)
            hits.append(SearchHit(record=to_record(hit["entity"] | {"id": hit["id"]}), score=score, distance=distance,
                                  similarity=score))
        return hits

    def records(self, scope: Scope, filters: Filters, limit: int, *,
                kinds: Sequence[Kind] | None = None, hide_covered: bool = False) -> list[MemoryRecord]:
        """Memories oldest first; ``hide_covered`` leaves out episodes whose message yielded a fact."""
        expression = all_of(select(scope, filters), kinds_expression(kinds), "covered == false" if hide_covered else "")
        records = [to_record(row) for row in self._query(expression, RECORD_FIELDS, limit)]
        # Oldest first, as a person reading a memory list expects; ids break ties stably.
        return sorted(records, key=lambda r: (r.created_at, r.id))

    def latest(self, scope: Scope, since: int, until: int, count: int, *,
               kinds: Sequence[Kind] | None = None) -> list[MemoryRecord]:
        """The latest ``count`` by (timestamp, created_at, id), oldest first.

        add(infer=True) asks for the messages before each new one (context.py). On Lite the
        scope's copy answers; Milvus queries have no ORDER BY, so there every match is read (only
        its id and times, the chosen rows whole). Reading whole rows through Lite made an add
        grow with the messages of its last 3 hours: 49 -> 146 ms over 600 of them.
        """
        if count <= 0:
            return []
        copied = self._from_copy(scope, lambda index: index.latest(since, until, count, kinds))
        if copied is not None:
            return copied
        expression = all_of(select(scope, None), f"timestamp >= {int(since)} and timestamp <= {int(until)}",
                          kinds_expression(kinds))
        rows = self._query(expression, ["id", "timestamp", "created_at"], _QUERY_CAP)
        rows.sort(key=lambda row: (row.get("timestamp") or 0, row.get("created_at") or "", row["id"]))
        return self.get([row["id"] for row in rows[-count:]])

    def citing(self, episode_ids: Sequence[str], kinds: Sequence[Kind]) -> list[MemoryRecord]:
        """Records of these kinds whose sources include any of these episodes."""
        if not episode_ids:
            return []
        ids = ", ".join(literal(i) for i in episode_ids)
        expression = all_of(f"json_contains_any(sources[{literal(SOURCE_IDS)}], [{ids}])", kinds_expression(kinds))
        return [to_record(row) for row in self._query(expression, RECORD_FIELDS, _QUERY_CAP)]

    def get_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        return {row["id"]: np.asarray(row["vector"], dtype=np.float32)
                for row in self._rows_by_id(ids, ["id", "vector"])}

    def find_by_hash(self, hashes: Sequence[str], scope: Scope) -> list[MemoryRecord]:
        if not hashes:
            return []
        # add()'s duplicate check, once per add: from the scope's copy on Lite (loaded here if need be).
        copied = self._from_copy(scope, lambda index: index.by_hash(hashes, scope))
        if copied is not None:
            return copied
        # Exactly this scope: an unset key must be unset on the row too.
        parts = [f"{key} == {literal(getattr(scope, key) or '')}" for key in SCOPE_KEYS]
        parts.append(f"hash in [{', '.join(literal(h) for h in hashes)}]")
        rows = self._query(" and ".join(parts), RECORD_FIELDS, _QUERY_CAP)
        return [to_record(row) for row in rows]

    def iterate(self, *, with_vectors: bool = False,
                batch_size: int = 1000) -> Iterator[tuple[MemoryRecord, Vectors | None]]:
        """Every memory in the collection, page by page (for export; no 16384-row cap)."""
        fields = [*RECORD_FIELDS, "vector"] if with_vectors else RECORD_FIELDS
        with quiet_pymilvus():
            iterator = self._call("query", lambda: self._client.query_iterator(
                self._name, batch_size=batch_size, filter="", output_fields=fields), flush=self._dirty)
        try:
            while True:
                page = self._call("query", iterator.next)
                if not page:
                    return
                for row in page:
                    vector = np.asarray(row["vector"], dtype=np.float32) if with_vectors else None
                    yield to_record(row), vector
        finally:
            iterator.close()

    def count(self) -> int:
        rows = self._query("", ["count(*)"], None)
        return int(rows[0]["count(*)"]) if rows else 0

    def reset(self) -> None:
        """Drop the collection and create it empty, with the same schema."""
        def run() -> None:
            self._kept.stale = True
            self._client.drop_collection(self._name)
            self._create(self._name)
            self._facts_apart = True
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

    # -- inspection (localmem doctor) --------------------------------------------
    @staticmethod
    def probe(config: VectorStoreConfig) -> StoreHealth:
        """Can the store at ``config.uri`` be opened, and what does it hold? Reads only: never creates one."""
        return milvus_client.probe_store(config)

    # -- internals --------------------------------------------------------------
    @property
    def _where(self) -> str:
        return str(self.lite_path) if self._lite else self.config.uri

    def _connect(self) -> Any:
        return milvus_client.connect(self.config, self.lite_path)

    def _disconnect(self) -> None:
        """Close the client; on Lite, the last store of this process on the folder also stops its engine
        (and its compaction), which frees the folder for other processes."""
        if self.lite_path is None:
            self._client.close()
        else:
            lite.close_client(self._client, self.lite_path)

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
            self._kept.stale = True
        except Exception as exc:
            self._broken = (f"the store at {self._where} failed a write ({reason_of(cause)}) and could not be "
                            f"reloaded ({reason_of(exc)}); free the disk or fix the cause, then reopen Memory")

    def _create(self, name: str, *, facts_apart: bool = True) -> None:
        milvus_schema.create(self._client, name, embedder=self.embedder, index_type=self.index_type,
                             metric=self.metric, bm25=self._bm25_supported(), version=SCHEMA_VERSION,
                             facts_apart=facts_apart)

    def _bm25_supported(self) -> bool:
        return self._lite or milvus_schema.bm25_supported(self._client)

    def _check_existing(self) -> None:
        self.embedder, self._stored_index_type = milvus_schema.check_existing(
            self._client, self._name, f"collection {self._name!r} at {self._where}", self.embedder, self._alternatives,
            self.metric, SCHEMA_VERSION, lambda name: self._create(name, facts_apart=False))

    def _hybrid(self, query: Vectors, text: str, expression: str, limit: int, *,
                split: bool, stats: WordStats | None) -> list[SearchHit]:
        """Dense and BM25 searches in Milvus, fused here (fusion.py says why not in Milvus, and how a fact counts).

        Once the collection holds facts (and ``split``: no kinds were asked for), facts never shorten
        the lists a message is ranked from: messages and facts are searched apart, by meaning (two
        lists merged by score, the same cosine) and by words (each from its partition; in a
        collection without the facts' partition, one list drawn twice as deep and cut after its
        ``draw``-th message). With ``stats`` the rows BM25 drew are scored again with the scope's
        word statistics (words.py), and ``_WORD_DRAW`` times as many are drawn.
        """
        depth = max(limit, self.fusion.depth)
        keyed = split and self._facts_present()
        # Rescored, the rows drawn are a wider net: their order by Milvus's scores is only a guess.
        draw = depth * _WORD_DRAW if stats is not None else depth
        apart = keyed and self._facts_apart
        dense, words = milvus_candidates.hybrid(
            self._client, self._name, query, text, expression, depth=depth, draw=draw, keyed=keyed, apart=apart,
            params=milvus_candidates.search_params(self.index_type, self.metric, depth))
        records = {hit["id"]: to_record(hit["entity"] | {"id": hit["id"]}) for hit in [*words, *dense]}
        drawn = [(h["id"], abs(float(h["distance"]))) for h in words]
        if not apart:  # one list for both kinds: cut it after its draw-th message, in Milvus's order
            drawn = messages_deep(drawn, groups(records), draw)
        if stats is not None:
            drawn = rescored(stats, text, drawn, records)
        by_meaning = [(h["id"], similarity(self.metric, float(h["distance"]))) for h in dense]
        return rank(self.fusion, records, by_meaning, drawn, limit, self.get)

    def _dense(self, query: Vectors, expression: str, limit: int) -> list[dict[str, Any]]:
        params = milvus_candidates.search_params(self.index_type, self.metric, limit)
        return milvus_candidates.dense(self._client, self._name, query, expression, limit, params)

    def _facts_present(self) -> bool:
        """Whether the collection holds any fact: asked once, then kept up by this handle's writes.
        (Until it is reopened, a handle ranks facts that another process adds to a server collection
        in the messages' lists, as rows of their own.)"""
        if self._holds_facts is None:
            self._holds_facts = bool(self._client.query(self._name, filter=f"kind != {literal(EPISODE)}",
                                                        output_fields=["id"], limit=1))
        return self._holds_facts

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
        rows = [to_row(r, v) for r, v in zip(records, matrix.tolist(), strict=True)]
        method = getattr(self._client, op)
        with self._kept.lock:
            old = self._old_records([r.id for r in records]) if op == "upsert" else []
            # A kind never changes, so a row stays in its partition; a batch of both kinds is two calls,
            # which the writer's journal covers as it covers its insert-then-upsert (writer.py).
            for partition in (MESSAGES_PARTITION, FACTS_PARTITION):
                at = [i for i, row in enumerate(rows) if self._partition(row["kind"]) == partition]
                if at:
                    part = [rows[i] for i in at]
                    self._call(op, lambda part=part, partition=partition: method(self._name, part,
                                                                                   partition_name=partition))
                    self._mark_written(len(part))
                    written = {row["id"] for row in part}  # counted as written, should the next call fail
                    self._kept.written([records[i] for i in at], [rows[i]["vector"] for i in at],
                                       [r for r in old if r.id in written])
        if any(r.kind != EPISODE for r in records):
            self._holds_facts = True
        if self._pending >= _FLUSH_AFTER_WRITE_ROWS:
            # Searches and the duplicate check read the scope's copy, not Milvus: without this, rows
            # would wait in Lite's memtable (and its WAL, replayed on open) until 128 MB of them.
            self._call("flush", self._flush_locked)

    def _from_copy(self, scope: Scope, read: Callable[[ScopeIndex], _T]) -> _T | None:
        """``read`` answered by the scope's full copy on Lite (loaded if need be); None without one."""
        if not (self._lite and self._kept.cache.max_rows > 0):
            return None
        with self._kept.scope(scope) as index:  # no write changes the copy while it answers
            return read(index) if index is not None and index.full else None

    def _load(self, scope: Scope, alone: bool) -> ScopeIndex | None:
        """Read a scope from Milvus: its rows for a full copy when they fit, else its statistics."""
        expression = select(scope, None)
        total = self._query(expression, ["count(*)"], None)
        rows = int(total[0]["count(*)"]) if total else 0
        max_rows = self._kept.cache.max_rows
        full = self._lite and alone and max_rows > 0 and rows <= max_rows
        if not full and rows > _WORD_STATS_ROWS:
            return None
        index = ScopeIndex(scope, self.embedder.dims, full=full)
        with quiet_pymilvus():
            pages = self._call("query", lambda: self._client.query_iterator(
                self._name, batch_size=IDS_PER_CALL, filter=expression,
                output_fields=COPY_FIELDS if full else WORD_FIELDS), flush=self._dirty)
        try:
            while page := self._call("query", pages.next):
                if full:
                    for row in page:
                        index.put(to_record(row), row["vector"])
                else:
                    index.stats.count(row["memory"] for row in page if ranks_alone(row))
        finally:
            pages.close()
        return index

    def _lite_clients(self) -> tuple[int, bool]:
        path = self.lite_path
        return (lite.opened(path), lite.shared(path)) if path is not None else (0, False)

    def _alone_on_folder(self) -> bool:
        """Whether this store is the only one of this process on its Lite folder (``_kept.lock`` held).

        Copies are exact only while this store makes every write: once another store of this
        process opens the folder (a second Memory on the same path), copies made before are
        dropped, and none is made while the other is open; statistics-only ones are kept then,
        as on a server."""
        opened, shared = self._lite_clients()
        if (opened, shared) != (self._opened_seen, self._shared_seen):
            self._kept.forget()
            self._opened_seen, self._shared_seen = opened, shared
        return not shared

    def _old_records(self, ids: Sequence[str]) -> list[MemoryRecord]:
        """The stored versions of ``ids``, when a statistics-only copy must take them out (a server's)."""
        if not self._kept.cache.needs_old_rows:
            return []
        return [to_record(row) for row in self._rows_by_id(ids, RECORD_FIELDS)]

    def _partition(self, kind: str) -> str:
        return FACTS_PARTITION if self._facts_apart and kind != EPISODE else MESSAGES_PARTITION

    def _query(self, expression: str, fields: list[str], limit: int | None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"filter": expression, "output_fields": fields}
        if limit is not None:
            kwargs["limit"] = min(limit, _QUERY_CAP)
        rows: list[dict[str, Any]] = self._call(
            "query", lambda: self._client.query(self._name, **kwargs),
            flush=self._pending >= _FLUSH_BEFORE_QUERY_ROWS)
        return rows

    def _rows_by_id(self, ids: Sequence[str], fields: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for chunk in chunks(ids):
            rows += self._call("get", lambda chunk=chunk: self._client.query(
                self._name, filter=ids_expression(chunk), output_fields=fields, limit=len(chunk)),
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
                raise StoreError(f"Milvus {what} on collection {self._name!r} failed: {reason_of(exc)}") from exc


