"""The history of every change, in a collection of the same Milvus server as the memories.

Why not SQLite here: with a server uri, several processes (on several machines) write the
same memories, and a history file beside one of them would miss the others' events. Keeping
events in ``<collection>_history`` on the server makes ``history(id)`` complete whichever
process wrote it, and needs nothing shared but the server.

Order: events sort by ``seq``, the writer's wall clock in nanoseconds (plus the position in
its batch); processes on one host share that clock, and a memory's own events are written
under one process's write lock, so per-memory order holds. Milvus 2.3 requires a vector
field in every collection: a 2-d zero vector stands in, never searched. One insert is one
request, so a batch of events lands whole or not at all.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from localmem.config import VectorStoreConfig
from localmem.errors import HistoryError
from localmem.records import Event, HistoryEvent
from localmem.vector_stores.milvus_filters import literal

_PLACEHOLDER_DIM = 2
_FIELDS = ["id", "memory_id", "event", "created_at", "seq", "body"]
_PAGE = 1000
_QUERY_CAP = 16384  # Milvus's largest query window
_ID_CHUNK = 500


class MilvusHistory:
    """Implements protocols.HistoryStore on a Milvus server collection."""

    def __init__(self, config: VectorStoreConfig) -> None:
        from pymilvus import MilvusClient

        self.name = f"{config.collection_name}_history"
        self._where = f"{config.uri} collection {self.name!r}"
        self._lock = threading.Lock()
        self._intents: dict[int, str] = {}
        self._next_intent = 0
        kwargs: dict[str, Any] = {k: v for k, v in (("token", config.token), ("db_name", config.db_name)) if v}
        try:
            self._client = MilvusClient(uri=config.uri, **kwargs)
        except Exception as exc:
            raise HistoryError(f"cannot connect to Milvus at {config.uri} for history: {exc}") from exc
        try:
            if not self._client.has_collection(self.name):
                self._create()
            self._client.load_collection(self.name)
        except Exception as exc:
            self._client.close()
            raise HistoryError(f"cannot open history {self._where}: {exc}") from exc

    def record(self, events: Sequence[HistoryEvent]) -> None:
        if not events:
            return
        base = time.time_ns()
        rows = [_to_row(e, base + i) for i, e in enumerate(events)]
        self._call("write", lambda: self._client.insert(self.name, rows))

    def history(self, memory_id: str) -> list[HistoryEvent]:
        # One memory has a handful of events: far below the 16384-row query window.
        rows = self._call("read", lambda: self._client.query(
            self.name, filter=f"memory_id == {literal(memory_id)}", output_fields=_FIELDS, limit=_QUERY_CAP))
        return _ordered(rows)

    def all_events(self) -> list[HistoryEvent]:
        def run() -> list[dict[str, Any]]:
            iterator = self._client.query_iterator(self.name, batch_size=_PAGE, filter="seq >= 0",
                                                   output_fields=_FIELDS)
            rows: list[dict[str, Any]] = []
            try:
                while page := iterator.next():
                    rows += page
            finally:
                iterator.close()
            return rows
        return _ordered(self._call("read", run))

    def event_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ", ".join(literal(i) for i in ids[start:start + _ID_CHUNK])
            rows = self._call("read", lambda c=chunk: self._client.query(self.name, filter=f"id in [{c}]",
                                                                          output_fields=["id"]))
            found.update(r["id"] for r in rows)
        return found

    # -- journal (protocols.HistoryStore) ---------------------------------------
    # A server has no transaction spanning two collections, so intents live in this
    # process only: the Writer still undoes a failed batch exactly, but a batch cut by
    # a crash is not finished by the next open as it is with SQLite (see README).
    def begin(self, intent: str) -> int:
        with self._lock:
            self._next_intent += 1
            self._intents[self._next_intent] = intent
            return self._next_intent

    def commit(self, intent_id: int, events: Sequence[HistoryEvent], *, reset: bool = False) -> None:
        if reset:
            self.reset()
        self.record(events)
        with self._lock:
            self._intents.pop(intent_id, None)

    def mark(self, intent_id: int, intent: str) -> None:
        with self._lock:
            if intent_id in self._intents:
                self._intents[intent_id] = intent

    def discard(self, intent_id: int) -> None:
        with self._lock:
            self._intents.pop(intent_id, None)

    def intents(self) -> list[tuple[int, str]]:
        with self._lock:
            return sorted(self._intents.items())

    def reset(self) -> None:
        def run() -> None:
            self._client.drop_collection(self.name)
            self._create()
            self._client.load_collection(self.name)
        self._call("reset", run)

    def close(self) -> None:
        with self._lock:
            self._client.close()

    def _create(self) -> None:
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
        schema.add_field("memory_id", DataType.VARCHAR, max_length=64)
        schema.add_field("event", DataType.VARCHAR, max_length=8)
        schema.add_field("created_at", DataType.VARCHAR, max_length=64)
        schema.add_field("seq", DataType.INT64)
        # old/new text and updated_at may be None: a JSON body keeps that without NULL columns (2.3 has none).
        schema.add_field("body", DataType.JSON)
        schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=_PLACEHOLDER_DIM)
        index = self._client.prepare_index_params()
        index.add_index(field_name="placeholder", index_type="FLAT", metric_type="L2")
        self._client.create_collection(self.name, schema=schema, index_params=index, consistency_level="Strong")

    def _call(self, what: str, fn: Any) -> Any:
        with self._lock:
            try:
                return fn()
            except Exception as exc:
                raise HistoryError(f"history {what} on {self._where} failed: {exc}") from exc


def _to_row(event: HistoryEvent, seq: int) -> dict[str, Any]:
    body = {"old_memory": event.old_memory, "new_memory": event.new_memory, "updated_at": event.updated_at,
            "is_deleted": event.is_deleted}
    return {"id": event.id, "memory_id": event.memory_id, "event": event.event.value,
            "created_at": event.created_at, "seq": seq, "body": body, "placeholder": [0.0] * _PLACEHOLDER_DIM}


def _ordered(rows: list[dict[str, Any]]) -> list[HistoryEvent]:
    return [_from_row(r) for r in sorted(rows, key=lambda r: (r["seq"], r["id"]))]


def _from_row(row: dict[str, Any]) -> HistoryEvent:
    body = row["body"] if isinstance(row["body"], dict) else json.loads(row["body"])
    return HistoryEvent(id=row["id"], memory_id=row["memory_id"], old_memory=body.get("old_memory"),
                        new_memory=body.get("new_memory"), event=Event(row["event"]), created_at=row["created_at"],
                        updated_at=body.get("updated_at"), is_deleted=bool(body.get("is_deleted")))
