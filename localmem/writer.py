"""Apply a batch of memory changes to the vector store and the history, consistently.

Every write path (add, update, delete, delete_all, import) goes through
``Writer.apply``: the store is written first, then the history in one
transaction; if the history write fails, the store writes are undone, so the
two never disagree about what happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from localmem.errors import LocalmemError
from localmem.protocols import HistoryStore, Vectors, VectorStore
from localmem.records import Change, Event, HistoryEvent, MemoryRecord


@dataclass(frozen=True)
class Write:
    """One change: the record's new state (ADD/UPDATE), or the record removed (DELETE)."""

    event: Event
    record: MemoryRecord
    vector: Vectors | None = None  # one row; None for DELETE
    previous: MemoryRecord | None = None  # the state before an UPDATE (for history and undo)
    previous_vector: Vectors | None = None
    flags: tuple[str, ...] = ()

    def change(self) -> Change:
        previous = self.previous.memory if self.previous is not None else None
        return Change(id=self.record.id, memory=self.record.memory, event=self.event,
                      previous_memory=previous, flags=self.flags, kind=self.record.kind)

    def history_event(self) -> HistoryEvent:
        old = self.previous.memory if self.previous is not None else None
        if self.event is Event.ADD:
            old, new = None, self.record.memory
        elif self.event is Event.UPDATE:
            new = self.record.memory
        else:  # DELETE
            old, new = self.record.memory, None
        return HistoryEvent(
            id=str(uuid.uuid4()), memory_id=self.record.id, old_memory=old, new_memory=new, event=self.event,
            created_at=self.record.created_at, updated_at=self.record.updated_at,
            is_deleted=self.event is Event.DELETE)


class Writer:
    def __init__(self, store: VectorStore, history: HistoryStore) -> None:
        self.store = store
        self.history = history

    def apply(self, writes: Sequence[Write]) -> None:
        writes = [w for w in writes if w.event is not Event.NONE]
        if not writes:
            return
        adds = [w for w in writes if w.event is Event.ADD]
        updates = [w for w in writes if w.event is Event.UPDATE]
        deletes = [w for w in writes if w.event is Event.DELETE]
        done: list[Write] = []
        try:
            if adds:
                self.store.insert([w.record for w in adds], _stack(adds))
                done += adds
            if updates:
                self.store.upsert([w.record for w in updates], _stack(updates))
                done += updates
            if deletes:
                self.store.delete([w.record.id for w in deletes])
                done += deletes
            self.history.record([w.history_event() for w in writes])
        except BaseException:
            self._undo(done)
            raise

    def _undo(self, done: Sequence[Write]) -> None:
        """Best effort: put the store back as it was before ``apply``."""
        try:
            added = [w.record.id for w in done if w.event is Event.ADD]
            if added:
                self.store.delete(added)
            restore = [w for w in done if w.event is Event.UPDATE and w.previous is not None
                       and w.previous_vector is not None]
            restore += [w for w in done if w.event is Event.DELETE and w.previous_vector is not None]
            if restore:
                records = [w.previous if w.event is Event.UPDATE and w.previous else w.record for w in restore]
                vectors = np.vstack([w.previous_vector for w in restore if w.previous_vector is not None])
                self.store.upsert(records, vectors)
        except LocalmemError:
            pass  # the original error is the one worth raising


def _stack(writes: Sequence[Write]) -> Vectors:
    rows = [w.vector for w in writes]
    if any(r is None for r in rows):
        raise ValueError("ADD and UPDATE writes need a vector")
    return np.vstack([r for r in rows if r is not None]).astype(np.float32, copy=False)
