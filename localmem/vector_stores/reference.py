"""A reference vector store in plain numpy: the smallest thing that meets protocols.VectorStore.

It stores and selects rows; ranking is the retrieval core's (retrieval/scopes.py
``ScopeIndex.search``, the code that ranks a Milvus Lite scope's copy), so both
give the same hits. It exists to keep the store contract honest (the contract
suite runs over it, Milvus Lite and a Milvus server) and for unit tests that
want a store without an engine. It is not for data you keep: nothing is written
to disk. A collection lives as long as the process, under its ``collection_name``,
so a store opened again on the same name sees the same rows, as a reopened
Milvus collection does. Every search scans its scope: fine for thousands of rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from localmem.config import VectorStoreConfig
from localmem.errors import SchemaMismatchError, StoreError
from localmem.filters import as_filter
from localmem.protocols import EmbedderIdentity, Filters, StoreLimits, Vectors
from localmem.records import KINDS, Kind, MemoryRecord, Scope, SearchHit
from localmem.retrieval.fusion import Fusion
from localmem.retrieval.matching import matches, within
from localmem.retrieval.scopes import ScopeIndex

# The same limits as Milvus (vector_stores/milvus.py): the facade checks input against them.
LIMITS = StoreLimits(max_text_bytes=65535, max_results=16384)


@dataclass
class _Collection:
    identity: EmbedderIdentity
    rows: dict[str, tuple[MemoryRecord, Vectors]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # every store open on it takes this one


_COLLECTIONS: dict[str, _Collection] = {}
_COLLECTIONS_LOCK = threading.Lock()


class ReferenceStore:
    """Memories in a dict of (record, vector); implements protocols.VectorStore."""

    def __init__(self, config: VectorStoreConfig, embedder: EmbedderIdentity) -> None:
        self.config = config
        self.embedder = embedder
        self.metric = config.metric_type
        self.hybrid = config.hybrid
        self.fusion = Fusion(method=config.fusion, k=config.rrf_k, depth=config.fusion_depth)
        self._closed = False
        with _COLLECTIONS_LOCK:
            found = _COLLECTIONS.setdefault(config.collection_name, _Collection(embedder))
        where = f"collection {config.collection_name!r} (reference store)"
        if found.identity.dims != embedder.dims:
            raise SchemaMismatchError(f"{where} holds {found.identity.dims}-d vectors but the embedder "
                                      f"{embedder.name!r} makes {embedder.dims}-d ones")
        if found.identity.name != embedder.name or found.identity.fingerprint != embedder.fingerprint:
            raise SchemaMismatchError(f"{where} was filled by {found.identity.name!r}, not {embedder.name!r}")
        self._db = found

    @property
    def limits(self) -> StoreLimits:
        return LIMITS

    def insert(self, records: Sequence[MemoryRecord], vectors: Vectors) -> None:
        self.upsert(records, vectors)

    def upsert(self, records: Sequence[MemoryRecord], vectors: Vectors) -> None:
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(records), -1) if records else vectors
        if records and matrix.shape[1] != self.embedder.dims:
            raise SchemaMismatchError(f"vector has {matrix.shape[1]} dimensions; the store holds {self.embedder.dims}")
        with self._open():
            for record, vector in zip(records, matrix, strict=True):
                self._db.rows[record.id] = (record, np.array(vector, dtype=np.float32))

    def get(self, ids: Sequence[str]) -> list[MemoryRecord]:
        with self._open():
            return [self._db.rows[i][0] for i in ids if i in self._db.rows]

    def delete(self, ids: Sequence[str]) -> None:
        with self._open():
            for memory_id in ids:
                self._db.rows.pop(memory_id, None)

    def search(self, vector: Vectors, scope: Scope, filters: Filters, limit: int, *,
               text: str | None = None, kinds: Sequence[Kind] | None = None) -> list[SearchHit]:
        where = as_filter(filters)
        hybrid = text is not None and bool(text.strip()) and self.hybrid
        with self._open():
            index = ScopeIndex(scope, self.embedder.dims, full=True)
            for record, row in self._db.rows.values():
                if within(record, scope):
                    index.put(record, row)
        # Without fusion contexts (only keys to their message) stay out, as on Milvus.
        return index.search(self.fusion, self.metric, np.asarray(vector, dtype=np.float32), text if hybrid else None,
                            limit, KINDS if kinds is None and not hybrid else kinds, where)

    def records(self, scope: Scope, filters: Filters, limit: int, *,
                kinds: Sequence[Kind] | None = None, hide_covered: bool = False) -> list[MemoryRecord]:
        where = as_filter(filters)
        found = sorted((r for r in self._selected(scope) if matches(r, where) and (kinds is None or r.kind in kinds)
                        and not (hide_covered and r.covered)), key=lambda r: (r.created_at, r.id))
        return found[:limit]

    def latest(self, scope: Scope, since: int, until: int, count: int, *,
               kinds: Sequence[Kind] | None = None) -> list[MemoryRecord]:
        if count <= 0:
            return []
        timed = [r for r in self._selected(scope) if since <= (r.timestamp or 0) <= until
                 and (kinds is None or r.kind in kinds)]
        return sorted(timed, key=lambda r: (r.timestamp or 0, r.created_at, r.id))[-count:]

    def citing(self, episode_ids: Sequence[str], kinds: Sequence[Kind]) -> list[MemoryRecord]:
        wanted = set(episode_ids)
        return [r for r in self._selected(Scope()) if r.kind in kinds and wanted.intersection(r.sources)]

    def get_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        with self._open():
            return {i: self._db.rows[i][1].copy() for i in ids if i in self._db.rows}

    def find_by_hash(self, hashes: Sequence[str], scope: Scope) -> list[MemoryRecord]:
        wanted = set(hashes)
        return [r for r in self._selected(scope) if r.hash in wanted and r.scope == scope]

    def iterate(self, *, with_vectors: bool = False,
                batch_size: int = 1000) -> Iterator[tuple[MemoryRecord, Vectors | None]]:
        with self._open():
            rows = list(self._db.rows.values())
        for record, vector in rows:
            yield record, (vector.copy() if with_vectors else None)

    def count(self) -> int:
        with self._open():
            return len(self._db.rows)

    def reset(self) -> None:
        with self._open():
            self._db.rows.clear()

    def close(self) -> None:
        self._closed = True

    def _selected(self, scope: Scope) -> list[MemoryRecord]:
        with self._open():
            return [record for record, _ in self._db.rows.values() if within(record, scope)]

    def _open(self) -> threading.Lock:
        if self._closed:
            raise StoreError(f"the reference store {self.config.collection_name!r} is closed")
        return self._db.lock


def forget(collection_name: str) -> None:
    """Drop a collection from this process (a test's clean-up)."""
    with _COLLECTIONS_LOCK:
        _COLLECTIONS.pop(collection_name, None)
