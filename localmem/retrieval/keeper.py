"""What a store keeps per scope (scopes.py), behind one short lock.

The lock guards the kept scopes only while they are read or changed in memory: a
search answered by a copy, a write applied to it. Loading a scope (reading its rows
from the engine: seconds for a large one) happens outside it, so the first search of
a big scope stalls no other request; the load is published only if nothing changed
the kept scopes meanwhile (a write of this store, a reset), else it starts again,
and the last try holds the lock so that a stream of writes cannot starve it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence

from localmem.records import MemoryRecord, Scope
from localmem.retrieval.scopes import ScopeCache, ScopeIndex

# Loads read outside the lock before one is made holding it.
LOAD_TRIES = 3


class ScopeKeeper:
    """A ScopeCache with its lock, and the rule for loading into it.

    ``load(scope, alone)`` reads a scope from the store (``alone``: whether this store makes
    every write of its data, so a full copy can stay exact); ``alone()`` is asked under the lock
    and may call ``forget`` (a Lite folder another store of the process opened)."""

    def __init__(self, cache: ScopeCache, load: Callable[[Scope, bool], ScopeIndex | None],
                 alone: Callable[[], bool] = lambda: True) -> None:
        self.cache = cache
        self.lock = threading.Lock()
        # Set without the lock by a reset or a failed write's reload: everything kept is dropped at the next use.
        self.stale = False
        self._load = load
        self._alone = alone
        self._generation = 0  # changes whenever the kept scopes may have (under the lock)

    @contextlib.contextmanager
    def scope(self, scope: Scope) -> Iterator[ScopeIndex | None]:
        """The scope's ScopeIndex (None for a scope too large to keep), loaded on its first use, with
        the lock held while the caller reads it: no write changes it meanwhile."""
        for attempt in range(LOAD_TRIES):
            with self.lock:
                if self.stale:
                    self.forget()
                alone = self._alone()
                if scope in self.cache:
                    yield self.cache.get(scope)
                    return
                if attempt == LOAD_TRIES - 1:
                    index = self._load(scope, alone)
                    self.cache.keep(scope, index)
                    yield index
                    return
                generation = self._generation
            index = self._load(scope, alone)
            with self.lock:
                if generation == self._generation and not self.stale:
                    self.cache.keep(scope, index)
                    yield index
                    return

    def forget(self) -> None:
        """Drop every kept scope (lock held); loads under way are then not published."""
        self.cache.clear()
        self.stale = False
        self._generation += 1

    def written(self, records: Sequence[MemoryRecord], vectors: Sequence[Sequence[float]],
                old: Sequence[MemoryRecord]) -> None:
        """Records the store accepted (lock held); ``old``: the versions they replace."""
        self.cache.written(records, vectors, old)
        self._generation += 1

    def deleted(self, ids: Sequence[str], old: Sequence[MemoryRecord]) -> None:
        """Records the store deleted (lock held)."""
        self.cache.deleted(ids, old)
        self._generation += 1

    def records(self, ids: Sequence[str]) -> list[MemoryRecord] | None:
        """``ids`` from the full copies, when every one of them is there and they are current; else None."""
        with self.lock:
            copied = [self.cache.record(i) for i in ids] if not self.stale and self._alone() else []
        found = [r for r in copied if r is not None]
        return found if copied and len(found) == len(copied) else None
