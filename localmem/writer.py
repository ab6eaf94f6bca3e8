"""Apply a batch of memory changes to the vector store and the history, atomically.

Every write path (add, update, delete, delete_all, reset, import) goes through
this Writer, under its one lock. A batch is journaled first (journal.py: one
small SQLite commit), then applied to the store, then its history is appended
and its journal entry cleared in one SQLite transaction. If anything fails in
this process (an error, Ctrl-C), the store is put back exactly as it was
(previous records and vectors, timestamps included) and the entry cleared; if
the process dies, ``recover()`` on the next open finishes the batch (or the
undo that was under way). So store and history never disagree for longer than
a crash, and a write that returned is in both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from localmem.errors import LocalmemError, RollbackError
from localmem.journal import Intent, Row, stack
from localmem.protocols import HistoryStore, Vectors, VectorStore
from localmem.records import Change, Event, HistoryEvent, MemoryRecord, now_iso, text_hash

# Crash tests name a step here (e.g. LOCALMEM_CRASH_AT=stored) and the process
# kills itself there, so each gap between the two stores is tested by design, not luck.
CRASH_ENV = "LOCALMEM_CRASH_AT"


def checkpoint(step: str) -> None:
    """A named point between the journal, store and history writes (see CRASH_ENV)."""
    if os.environ.get(CRASH_ENV) == step:
        kill = getattr(signal, "SIGKILL", None)
        if kill is None:  # Windows
            os._exit(137)
        os.kill(os.getpid(), kill)


@dataclass(frozen=True)
class Write:
    """One change: the record's new state (ADD/UPDATE), or the record removed (DELETE)."""

    event: Event
    record: MemoryRecord
    vector: Vectors | None = None  # one row; None for DELETE
    previous: MemoryRecord | None = None  # the state before an UPDATE or DELETE (history and undo)
    previous_vector: Vectors | None = None  # looked up by the Writer when not given
    flags: tuple[str, ...] = ()

    @classmethod
    def update(cls, record: MemoryRecord, text: str, vector: Vectors,
               metadata: dict[str, Any] | None = None, **fields: Any) -> Write:
        """The one place an update is built: new text, hash, timestamp (and metadata when given);
        ``fields`` sets other record fields, such as a fact's sources and time."""
        new = replace(record, memory=text, hash=text_hash(text), updated_at=now_iso(),
                      metadata=record.metadata if metadata is None else metadata, **fields)
        return cls(Event.UPDATE, new, np.asarray(vector, dtype=np.float32).reshape(1, -1), previous=record)

    @classmethod
    def delete(cls, record: MemoryRecord) -> Write:
        return cls(Event.DELETE, replace(record, updated_at=now_iso()), previous=record)

    def change(self) -> Change:
        previous = self.previous.memory if self.previous is not None else None
        return Change(id=self.record.id, memory=self.record.memory, event=self.event,
                      previous_memory=previous, flags=self.flags, kind=self.record.kind)

    def history_event(self) -> HistoryEvent:
        old = self.previous.memory if self.previous is not None else None
        event = self.event
        if event is Event.UPDATE and self.record.superseded_by is not None and (
                self.previous is None or self.previous.superseded_by != self.record.superseded_by):
            # Its words are unchanged; what changed is that it no longer holds (currency.py).
            event = Event.EXPIRE
        if self.event is Event.ADD:
            old, new = None, self.record.memory
        elif self.event is Event.UPDATE:
            new = self.record.memory
        else:  # DELETE
            old, new = self.record.memory, None
        return HistoryEvent(
            id=str(uuid.uuid4()), memory_id=self.record.id, old_memory=old, new_memory=new, event=event,
            created_at=self.record.created_at, updated_at=self.record.updated_at,
            is_deleted=self.event is Event.DELETE)


class Writer:
    def __init__(self, store: VectorStore, history: HistoryStore) -> None:
        self.store = store
        self.history = history
        # Held by Memory around read-modify-write sequences too, so one thread's
        # decision is never based on a state another thread is changing.
        self.lock = threading.RLock()
        # Journal entries this process could not finish or clear, with the exact
        # intent to finish them by (an undo known here beats a stale "redo" row).
        self._unfinished: dict[int, Intent] = {}

    def apply(self, writes: Sequence[Write], events: Sequence[HistoryEvent] | None = None, *,
              queue: Sequence[str] = (), done: Sequence[int] = ()) -> None:
        """Write a batch; ``events`` replaces the history derived from the writes (import brings its own).
        ``queue`` adds background jobs and ``done`` removes them, with the batch (background.py)."""
        writes = [w for w in writes if w.event is not Event.NONE]
        with self.lock:
            self._finish_unfinished()
            history = list(events) if events is not None else [w.history_event() for w in writes]
            if not writes:
                # No store change: one history transaction is atomic already.
                if queue or done:
                    self.history.commit(None, history, queue=queue, done=done)
                else:
                    self.history.record(history)
                return
            writes = self._with_previous(writes)
            intent = Intent(upserts=tuple((w.record, _row_vector(w)) for w in writes if w.event is not Event.DELETE),
                            deletes=tuple(w.record.id for w in writes if w.event is Event.DELETE),
                            events=tuple(history), queue=tuple(queue), done=tuple(done))
            intent_id = self.history.begin(intent.to_json())
            try:
                checkpoint("journaled")
                self._store(writes)
                checkpoint("stored")
                self.history.commit(intent_id, history, queue=intent.queue, done=intent.done)
            except BaseException as exc:
                self._roll_back(intent_id, _undo_intent(writes), exc)
                raise

    def reset(self) -> None:
        """Empty the collection and its history; a crash in between is finished on the next open."""
        with self.lock:
            self._finish_unfinished()
            intent = Intent(reset=True)
            intent_id = self.history.begin(intent.to_json())
            try:
                checkpoint("journaled")
                self.store.reset()
                checkpoint("stored")
                self.history.commit(intent_id, [], reset=True)
            except BaseException:
                # A half-done reset cannot be undone (the old rows are gone): finish it later instead.
                self._unfinished[intent_id] = intent
                raise

    def recover(self) -> list[str]:
        """Finish every batch left in the journal (a crash, or a failure this process could not clear).

        Returns the ids of the memories touched, for a log or a test.
        """
        touched: list[str] = []
        with self.lock:
            for intent_id, body in self.history.intents():
                intent = self._unfinished.get(intent_id) or Intent.from_json(body)
                self._finish(intent_id, intent)
                self._unfinished.pop(intent_id, None)
                touched += intent.ids()
            self._unfinished.clear()  # what is not in the journal any more needs nothing
        return touched

    # -- internals --------------------------------------------------------------
    def _store(self, writes: Sequence[Write]) -> None:
        adds = [w for w in writes if w.event is Event.ADD]
        updates = [w for w in writes if w.event is Event.UPDATE]
        deletes = [w for w in writes if w.event is Event.DELETE]
        if adds:  # fresh ids: insert is cheaper than upsert; a redo after a crash upserts
            self.store.insert([w.record for w in adds], np.vstack([_row_vector(w) for w in adds]))
        checkpoint("inserted")
        if updates:
            self.store.upsert([w.record for w in updates], np.vstack([_row_vector(w) for w in updates]))
        if deletes:
            self.store.delete([w.record.id for w in deletes])

    def _with_previous(self, writes: list[Write]) -> list[Write]:
        """Fill in the previous vector of every UPDATE and DELETE, so an undo restores the row exactly."""
        missing = [w.record.id for w in writes if w.event is not Event.ADD and w.previous_vector is None]
        if not missing:
            return writes
        found = self.store.get_vectors(missing)
        previous = {r.id: r for r in self.store.get([w.record.id for w in writes if w.previous is None
                                                     and w.event is not Event.ADD])}
        out = []
        for w in writes:
            if w.event is not Event.ADD:
                w = replace(w, previous=w.previous or previous.get(w.record.id),
                            previous_vector=w.previous_vector if w.previous_vector is not None
                            else found.get(w.record.id))
            out.append(w)
        return out

    def _roll_back(self, intent_id: int, undo: Intent, original: BaseException) -> None:
        """Put the store back after a failed batch; raise RollbackError if that fails too."""
        if not self._pending(intent_id):
            return  # the batch reached history after all (Ctrl-C just after the commit): keep it
        self._unfinished[intent_id] = undo
        # Journal the undo first: if this process dies mid-undo, the next open finishes the undo. If the
        # journal cannot be written, the in-memory intent above still steers this process: undo anyway.
        with contextlib.suppress(LocalmemError):
            self.history.mark(intent_id, undo.to_json())
        try:
            checkpoint("undoing")
            self._finish(intent_id, undo)
        except LocalmemError as exc:
            ids = undo.ids()
            raise RollbackError(
                f"a write failed ({type(original).__name__}: {original}) and undoing it failed too ({exc}); "
                f"memories {ids[:5]}{' and more' if len(ids) > 5 else ''} may differ from their history until "
                "the next write or the next open of this store, which finish the undo", ids, original) from exc
        self._unfinished.pop(intent_id, None)

    def _pending(self, intent_id: int) -> bool:
        """Whether the journal entry is still there (False: its history commit went through)."""
        try:
            return any(i == intent_id for i, _ in self.history.intents())
        except LocalmemError:
            return True  # cannot tell: undoing is the safe side while the entry may still be there

    def _finish(self, intent_id: int, intent: Intent) -> None:
        """Bring the store to the intent's end state (idempotent), then clear the entry with its history."""
        if intent.state == "undo":
            if intent.restore:
                self.store.upsert([r for r, _ in intent.restore], stack(intent.restore))
            if intent.remove:
                self.store.delete(list(intent.remove))
            self.history.discard(intent_id)
            return
        if intent.reset:
            self.store.reset()
            self.history.commit(intent_id, [], reset=True)
            return
        if intent.upserts:
            self.store.upsert([r for r, _ in intent.upserts], stack(intent.upserts))
        if intent.deletes:
            self.store.delete(list(intent.deletes))
        known = self.history.event_ids([e.id for e in intent.events])
        self.history.commit(intent_id, [e for e in intent.events if e.id not in known], queue=intent.queue,
                            done=intent.done)

    def close(self) -> None:
        """Try once more to finish what a failed write left; the next open does it otherwise."""
        if self._unfinished:
            with contextlib.suppress(LocalmemError):
                self.recover()

    def _finish_unfinished(self) -> None:
        if self._unfinished:
            self.recover()


def _row_vector(write: Write) -> Vectors:
    if write.vector is None:
        raise ValueError("ADD and UPDATE writes need a vector")
    return np.asarray(write.vector, dtype=np.float32).reshape(-1)


def _undo_intent(writes: Sequence[Write]) -> Intent:
    """The store state before ``writes``: rows to put back, ids to remove."""
    restore: list[Row] = []
    remove: list[str] = []
    for w in writes:
        if w.event is Event.ADD or w.previous is None or w.previous_vector is None:
            remove.append(w.record.id)  # nothing was there before (or nothing left to restore it from)
        else:
            restore.append((w.previous, np.asarray(w.previous_vector, dtype=np.float32).reshape(-1)))
    return Intent(state="undo", restore=tuple(restore), remove=tuple(remove))
