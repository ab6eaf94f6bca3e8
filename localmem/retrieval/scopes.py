"""What a store keeps in memory for each scope it has searched.

Always the scope's BM25 statistics (words.py). On a Milvus Lite folder, which one
process owns, also the scope's rows: its records, vectors and word postings, so
that a search of the scope is answered here, exactly, without a round trip to
the engine. Measured on one LoCoMo conversation (419 memories, 2 cores, idle), a
Lite search costs ~11 ms for the dense list and ~17 ms for the BM25 one, most of
it the engine's per-call work, against a query embedding of ~9 ms: a hybrid search
took 4.7x the exact-scan floor (embedding plus a numpy scan) through the engine.
Here both lists of that scope take well under a millisecond.

The copy is kept exact by construction: every write of the store goes through
``written``/``deleted`` after Milvus accepted it, a failed write or a reset drops
every copy (the next search loads the scope again), and no other process can
write the folder. Another store of this process can (a second Memory on the same
path): while one is open, or once one has been, copies made before are dropped
and none is made (milvus.py, ``_alone_on_folder``). A server is shared, so there
only the statistics are kept and Milvus searches. A search with filters is
answered by the copy as well, the filter evaluated row by row (matching.py): a
filter never changes which engine ranks, and the filter contract runs this
evaluator and Milvus's dialect over the same rows. add()'s duplicate check reads
the copy as well.

The copies are bounded by ``vector_store.config.cache_rows`` in all (least
recently searched scopes are dropped first); a scope larger than that is
searched in Milvus.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np

from localmem.filters import Filter
from localmem.protocols import Vectors
from localmem.records import CONTEXT, EPISODE, FACT, KEY_KINDS, Kind, MemoryRecord, Scope, SearchHit
from localmem.retrieval.fusion import Fusion
from localmem.retrieval.matching import matches, within
from localmem.retrieval.ranking import WORD_DIGITS, rank, similarity
from localmem.retrieval.words import K1, B, WordStats, tokens

_GROWTH = 2  # the vector matrix grows by this factor when full
# Rows that statistics-only entries (a server's) may count in all, and what a counted row costs at
# most: tracemalloc over the 200 first LoCoMo messages of a conversation gave 372 B a row (158 over
# 1,200: words repeat), tests/test_retrieval.py keeps it honest. An entry itself (its ScopeIndex)
# costs ~1.5 KB, counted as _ENTRY_ROWS rows; so the bound is ~40 MB, whatever the number of users.
STATS_ROWS = 100_000
STATS_ROW_BYTES = 400
_ENTRY_ROWS = 8


def ranks_alone(record: MemoryRecord) -> bool:
    """A message, or a fact that stands for no message (not a key to one): the records whose words the
    statistics count."""
    return record.kind == EPISODE or not record.sources


class ScopeIndex:
    """One scope's word statistics, and (``full``) its records, vectors and word postings."""

    def __init__(self, scope: Scope, dims: int, *, full: bool) -> None:
        self.scope = scope
        self.full = full
        self.stats = WordStats()
        self._slot: dict[str, int] = {}
        self._records: list[MemoryRecord | None] = []
        self._free: list[int] = []
        self._vectors = np.zeros((16 if full else 0, dims), dtype=np.float32)
        self._norms = np.zeros(len(self._vectors), dtype=np.float32)
        self._live = np.zeros(len(self._vectors), dtype=bool)
        self._key = np.zeros(len(self._vectors), dtype=bool)  # a fact or a context
        self._context = np.zeros(len(self._vectors), dtype=bool)
        self._alone = np.zeros(len(self._vectors), dtype=bool)
        self._lengths = np.zeros(len(self._vectors), dtype=np.float64)
        self._postings: dict[str, dict[int, int]] = {}
        self._hashes: dict[str, set[int]] = {}  # for the duplicate check of add()
        self.keys = 0

    def __len__(self) -> int:
        return len(self._slot)

    # -- keeping it current ---------------------------------------------------------
    def put(self, record: MemoryRecord, vector: Sequence[float] | Vectors) -> None:
        """Add a record of the scope, or replace the one with its id (a full index only)."""
        if not within(record, self.scope):
            self.remove(record.id)
            return
        self.remove(record.id)
        slot = self._free.pop() if self._free else self._grow()
        counts = Counter(tokens(record.memory))
        self._slot[record.id] = slot
        self._records[slot] = record
        row = np.asarray(vector, dtype=np.float32).reshape(-1)
        self._vectors[slot] = row
        self._norms[slot] = float(np.linalg.norm(row))
        self._live[slot] = True
        self._key[slot] = record.kind != EPISODE
        self._context[slot] = record.kind == CONTEXT
        self._alone[slot] = ranks_alone(record)
        self._lengths[slot] = sum(counts.values())
        self.keys += record.kind != EPISODE
        for word, tf in counts.items():
            self._postings.setdefault(word, {})[slot] = tf
        self._hashes.setdefault(record.hash, set()).add(slot)
        if ranks_alone(record):
            self.stats.count([record.memory])

    def remove(self, memory_id: str) -> None:
        slot = self._slot.pop(memory_id, None)
        if slot is None:
            return
        record = self._records[slot]
        assert record is not None
        for word in set(tokens(record.memory)):
            posting = self._postings.get(word)
            if posting is not None:
                posting.pop(slot, None)
                if not posting:
                    del self._postings[word]
        same = self._hashes.get(record.hash)
        if same is not None:
            same.discard(slot)
            if not same:
                del self._hashes[record.hash]
        if ranks_alone(record):
            self.stats.count([record.memory], -1)
        self.keys -= record.kind != EPISODE
        self._records[slot] = None
        self._live[slot] = False
        self._free.append(slot)

    def _grow(self) -> int:
        slot = len(self._records)
        self._records.append(None)
        if slot >= len(self._vectors):
            size = max(16, len(self._vectors) * _GROWTH)
            self._vectors = _resized(self._vectors, size)
            self._norms, self._live, self._key, self._context, self._alone, self._lengths = (
                _resized(a, size) for a in (self._norms, self._live, self._key, self._context, self._alone,
                                            self._lengths))
        return slot

    # -- reading --------------------------------------------------------------------
    def record(self, memory_id: str) -> MemoryRecord | None:
        slot = self._slot.get(memory_id)
        return None if slot is None else self._records[slot]

    def by_hash(self, hashes: Iterable[str], scope: Scope) -> list[MemoryRecord]:
        """Records with one of ``hashes`` whose scope is exactly ``scope`` (one this copy covers)."""
        out = []
        for key in hashes:
            for slot in sorted(self._hashes.get(key, ())):
                record = self._records[slot]
                if record is not None and record.scope == scope:
                    out.append(record)
        return out

    def latest(self, since: int, until: int, count: int, kinds: Iterable[Kind] | None) -> list[MemoryRecord]:
        """The ``count`` latest records timed from ``since`` to ``until``, oldest first (as MilvusStore.latest)."""
        wanted = None if kinds is None else set(kinds)
        timed = [r for r in self._records if r is not None and since <= (r.timestamp or 0) <= until
                 and (wanted is None or r.kind in wanted)]
        timed.sort(key=lambda r: (r.timestamp or 0, r.created_at, r.id))
        return timed[-count:]

    def dense(self, query: Vectors, metric: str, limit: int, kinds: Iterable[Kind] | None,
              where: np.ndarray | None = None) -> list[tuple[str, float]]:
        """The ``limit`` nearest records, best first, as (id, distance as Milvus returns it for ``metric``)."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        n = len(self._records)
        dots = self._vectors[:n] @ q
        if metric == "COSINE":
            distance = dots / np.maximum(self._norms[:n] * float(np.linalg.norm(q)), 1e-12)
        elif metric == "L2":  # Milvus's L2 is squared
            distance = self._norms[:n] ** 2 + float(q @ q) - 2.0 * dots
        else:
            distance = dots
        better = -distance if metric != "L2" else distance
        return self._best(better, distance, limit, self._wanted(kinds, where))

    def words(self, text: str, depth: int, kinds: Iterable[Kind] | None,
              where: np.ndarray | None = None) -> list[tuple[str, float]]:
        """BM25 matches of ``text`` (score > 0), best first, scored as WordStats.scores does, down to the
        ``depth``-th record that ranks alone (facts drawn from a message ride along, as in
        ranking.messages_deep) and the records tied with it."""
        n = len(self._records)
        score = np.zeros(n, dtype=np.float64)
        mean = self.stats.mean_length()
        for word, weight in self.stats.weights(text).items():
            posting = self._postings.get(word)
            if not posting:
                continue
            slots = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tf = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            norm = K1 * (1.0 - B + B * self._lengths[slots] / mean)
            score[slots] += weight * tf * (K1 + 1.0) / (tf + norm)
        candidates = np.flatnonzero(self._wanted(kinds, where) & (score > 0))
        ranked = candidates[np.argsort(-score[candidates], kind="stable")]
        counted = np.cumsum(self._alone[ranked])
        end = int(np.searchsorted(counted, depth)) + 1
        if end < len(ranked):  # and the rows tied with the last one: ranking.best_first orders ties
            last = round(float(score[ranked[end - 1]]), WORD_DIGITS)
            while end < len(ranked) and round(float(score[ranked[end]]), WORD_DIGITS) == last:
                end += 1
        return self._pairs(ranked[:end], score)

    def search(self, fusion: Fusion, metric: str, query: Vectors, text: str | None, limit: int,
               kinds: Sequence[Kind] | None, filters: Filter | None = None) -> list[SearchHit]:
        """A search of the scope, every row scored: with ``text`` dense and BM25 fused (ranking.rank),
        else the nearest rows by similarity. Keys (facts, contexts) never shorten the messages'
        dense list: without ``kinds`` both are drawn apart, as a store with keys does."""
        where = self.selected(filters)
        if text is None:
            return [SearchHit(record=self._known(key), score=score, distance=distance, similarity=score)
                    for key, distance in self.dense(query, metric, limit, kinds, where)
                    for score in [similarity(metric, distance)]]
        depth = max(limit, fusion.depth)
        if kinds is None and self.keys:
            dense = [*self.dense(query, metric, depth, [EPISODE], where),
                     *self.dense(query, metric, depth, KEY_KINDS, where)]
        else:
            dense = self.dense(query, metric, depth, kinds, where)
        words = self.words(text, depth, kinds, where)
        records = {key: self._known(key) for key, _ in [*dense, *words]}
        return rank(fusion, records, ((key, similarity(metric, d)) for key, d in dense), words, limit,
                    lambda ids: [r for i in ids if (r := self.record(i)) is not None])

    def _known(self, memory_id: str) -> MemoryRecord:
        record = self.record(memory_id)
        assert record is not None  # the lists hold only ids of this copy
        return record

    def _best(self, order: np.ndarray, values: np.ndarray, limit: int, wanted: np.ndarray) -> list[tuple[str, float]]:
        candidates = np.flatnonzero(wanted)
        if len(candidates) > limit:
            candidates = candidates[np.argpartition(order[candidates], limit - 1)[:limit]]
        return self._pairs(candidates[np.argsort(order[candidates], kind="stable")], values)

    def selected(self, where: Filter | None) -> np.ndarray | None:
        """The rows (slots) that pass the filter, for ``dense`` and ``words``; None without one."""
        if where is None:
            return None
        return np.fromiter((r is not None and matches(r, where) for r in self._records), dtype=bool,
                           count=len(self._records))

    def _wanted(self, kinds: Iterable[Kind] | None, where: np.ndarray | None) -> np.ndarray:
        n = len(self._records)
        keep = self._live[:n].copy()
        if where is not None:
            keep &= where[:n]
        if kinds is None:
            return keep
        wanted = set(kinds)
        if EPISODE not in wanted:
            keep &= self._key[:n]
        if FACT not in wanted:
            keep &= ~self._key[:n] | self._context[:n]
        if CONTEXT not in wanted:
            keep &= ~self._context[:n]
        return keep

    def _pairs(self, slots: np.ndarray, values: np.ndarray) -> list[tuple[str, float]]:
        out = []
        for slot in slots.tolist():
            record = self._records[slot]
            assert record is not None
            out.append((record.id, float(values[slot])))
        return out


class ScopeCache:
    """The store's ScopeIndex per scope, least recently searched first out; ``None`` marks a scope
    too large to keep anything for (its BM25 scores are Milvus's).

    Two bounds, each least recently searched first: full copies hold at most ``max_rows`` rows in
    all (~4 KB a row at 384 dimensions: the vector, the record, its postings), and
    statistics-only entries (a server's) count at most ``max_counted`` rows in all (each counted
    row costs its distinct words' share of the document frequencies, at most STATS_ROW_BYTES, and
    each entry _ENTRY_ROWS more, a scope too large to count too). A long-running server searched by
    ever new users so holds at most that much, whatever the number of users."""

    def __init__(self, max_rows: int, max_counted: int = STATS_ROWS) -> None:
        self.max_rows = max_rows
        self.max_counted = max_counted
        self._indexes: OrderedDict[Scope, ScopeIndex | None] = OrderedDict()

    def __contains__(self, scope: Scope) -> bool:
        return scope in self._indexes

    def __len__(self) -> int:
        return len(self._indexes)

    def get(self, scope: Scope) -> ScopeIndex | None:
        self._indexes.move_to_end(scope)
        return self._indexes[scope]

    def keep(self, scope: Scope, index: ScopeIndex | None) -> None:
        """Keep a loaded scope, dropping the least recently searched ones beyond the bounds."""
        self._indexes[scope] = index
        self._indexes.move_to_end(scope)
        self._trim(keep=scope)

    def _trim(self, keep: Scope | None = None) -> None:
        """Drop entries, least recently searched first, until both bounds hold (a dropped scope is
        loaded again by its next search)."""
        rows = sum(len(i) for i in self._indexes.values() if i is not None and i.full)
        counted = sum(_counted(i) for i in self._indexes.values() if i is None or not i.full)
        for old in list(self._indexes):
            if rows <= self.max_rows and counted <= self.max_counted:
                break
            dropped = self._indexes[old]
            if old == keep:
                continue
            if dropped is not None and dropped.full:
                if rows > self.max_rows:
                    del self._indexes[old]
                    rows -= len(dropped)
            elif counted > self.max_counted:
                del self._indexes[old]
                counted -= _counted(dropped)

    def clear(self) -> None:
        self._indexes.clear()

    @property
    def needs_old_rows(self) -> bool:
        """Whether a write must read the rows it replaces: only statistics-only copies do."""
        return any(i is not None and not i.full for i in self._indexes.values())

    def written(self, records: Sequence[MemoryRecord], vectors: Sequence[Sequence[float]],
                old: Sequence[MemoryRecord]) -> None:
        """Records Milvus accepted (``old``: the versions they replace, for statistics-only copies)."""
        for index in self._indexes.values():
            if index is None:
                continue
            if index.full:
                for record, vector in zip(records, vectors, strict=True):
                    index.put(record, vector)
            else:
                index.stats.count((r.memory for r in old if ranks_alone(r) and within(r, index.scope)), -1)
                index.stats.count((r.memory for r in records if ranks_alone(r) and within(r, index.scope)), 1)
        self._trim()  # copies grow with writes too

    def deleted(self, ids: Sequence[str], old: Sequence[MemoryRecord]) -> None:
        for index in self._indexes.values():
            if index is None:
                continue
            if index.full:
                for memory_id in ids:
                    index.remove(memory_id)
            else:
                index.stats.count((r.memory for r in old if ranks_alone(r) and within(r, index.scope)), -1)

    def record(self, memory_id: str) -> MemoryRecord | None:
        """A record from any full copy (every copy is current, so any will do)."""
        for index in self._indexes.values():
            if index is not None and index.full and (record := index.record(memory_id)) is not None:
                return record
        return None


def _counted(index: ScopeIndex | None) -> int:
    return _ENTRY_ROWS + (0 if index is None else max(0, index.stats.docs))


def _resized(array: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    out[:len(array)] = array
    return out
