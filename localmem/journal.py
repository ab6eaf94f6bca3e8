"""The intent journal: what a batch of writes will do, kept in the history database.

The vector store and the history database cannot share a transaction, so a
batch is made atomic across both with a redo log: the Writer records an
``Intent`` (the rows to write, the ids to delete, the history events to
append) in one small SQLite transaction before touching the store, applies it
to the store with idempotent operations, then appends the history and clears
the intent in one SQLite transaction. A crash anywhere leaves either nothing,
or an intent that the next open completes (``redo``), or one whose undo was
under way (``undo``, holding the rows to put back), which the next open
finishes rolling back. Either way store and history agree again.

One intent per batch, not per row: the journal costs one extra small SQLite
commit per add(), whatever its size. Vectors travel as base64 float32 (1.5 KB
a row for 384 dimensions), so a redo never needs the embedder.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from localmem.protocols import Vectors
from localmem.records import Event, HistoryEvent, MemoryRecord, Scope

State = Literal["redo", "undo"]
Row = tuple[MemoryRecord, Vectors]


@dataclass(frozen=True)
class Intent:
    """One batch of store changes and the history that describes them.

    ``state`` says what recovery does with an intent left behind: ``redo``
    writes ``upserts``, deletes ``deletes``, appends ``events`` and changes the
    job queue (``queue``, ``done``) with them; ``undo``
    writes ``restore`` back and deletes ``remove`` (the batch failed and its
    undo was interrupted). ``reset`` empties the collection and its history.
    """

    upserts: tuple[Row, ...] = ()
    deletes: tuple[str, ...] = ()
    events: tuple[HistoryEvent, ...] = ()
    reset: bool = False
    queue: tuple[str, ...] = ()  # background jobs (background.py) the batch queues
    done: tuple[int, ...] = ()  # and the ones it finishes
    state: State = "redo"
    restore: tuple[Row, ...] = field(default=())
    remove: tuple[str, ...] = field(default=())

    def ids(self) -> list[str]:
        """Every memory id the intent touches (for error messages)."""
        seen = [r.id for r, _ in (*self.upserts, *self.restore)] + [*self.deletes, *self.remove]
        return list(dict.fromkeys(seen))

    def to_json(self) -> str:
        body: dict[str, Any] = {"state": self.state}
        if self.reset:
            body["reset"] = True
        if self.upserts:
            body["upserts"] = [_row(r, v) for r, v in self.upserts]
        if self.deletes:
            body["deletes"] = list(self.deletes)
        if self.events:
            body["events"] = [e.to_dict() for e in self.events]
        if self.queue:
            body["queue"] = list(self.queue)
        if self.done:
            body["done"] = list(self.done)
        if self.restore:
            body["restore"] = [_row(r, v) for r, v in self.restore]
        if self.remove:
            body["remove"] = list(self.remove)
        return json.dumps(body, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Intent:
        body = json.loads(text)
        state: State = "undo" if body.get("state") == "undo" else "redo"
        return cls(upserts=tuple(_unrow(x) for x in body.get("upserts", [])),
                   deletes=tuple(body.get("deletes", [])),
                   events=tuple(_event(x) for x in body.get("events", [])),
                   reset=bool(body.get("reset", False)), state=state,
                   queue=tuple(str(j) for j in body.get("queue", [])), done=tuple(int(j) for j in body.get("done", [])),
                   restore=tuple(_unrow(x) for x in body.get("restore", [])),
                   remove=tuple(body.get("remove", [])))


def rows(records: Sequence[MemoryRecord], vectors: Vectors) -> tuple[Row, ...]:
    return tuple((r, np.asarray(v, dtype=np.float32)) for r, v in zip(records, vectors, strict=True))


def stack(rows: Sequence[Row]) -> Vectors:
    return np.vstack([v.reshape(1, -1) for _, v in rows]).astype(np.float32, copy=False)


def _row(record: MemoryRecord, vector: Vectors) -> dict[str, Any]:
    # Every field of the record, not its API shape: a replayed intent must restore an episode's
    # kind, speaker, time, sources and covered flag exactly.
    raw = np.asarray(vector, dtype="<f4").reshape(-1).tobytes()
    return {"record": dataclasses.asdict(record), "vector": base64.b64encode(raw).decode("ascii")}


def _unrow(item: dict[str, Any]) -> Row:
    state = dict(item["record"])
    record = MemoryRecord(**{**state, "scope": Scope(**state["scope"]), "sources": tuple(state["sources"])})
    vector = np.frombuffer(base64.b64decode(item["vector"]), dtype="<f4").astype(np.float32)
    return record, vector


def _event(raw: dict[str, Any]) -> HistoryEvent:
    return HistoryEvent(id=raw["id"], memory_id=raw["memory_id"], old_memory=raw.get("old_memory"),
                        new_memory=raw.get("new_memory"), event=Event(raw["event"]),
                        created_at=raw.get("created_at") or "", updated_at=raw.get("updated_at"),
                        is_deleted=bool(raw.get("is_deleted", False)))
