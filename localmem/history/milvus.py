"""The history of every change, in a collection of the same Milvus server as the memories.

Why not SQLite here: with a server uri, several processes (on several machines) write the
same memories, and a history file beside one of them would miss the others' events. Keeping
events in ``<collection>_history`` on the server makes ``history(id)`` complete whichever
process wrote it, and needs nothing shared but the server.

Order: events sort by ``seq``, the writer's wall clock in nanoseconds (plus the position in
its batch); processes on one host share that clock, and a memory's own events are written
under one process's write lock, so per-memory order holds. Milvus 2.3 requires a vector
field in every collection: a 2-d zero vector stands in, never searched. One upsert is one
request, so a batch of events lands whole or not at all.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
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
_INTENT_FIELDS = ["intent", "version", "part", "parts", "owner", "body"]
_INTENT_PIECE = 60000  # characters of ASCII JSON per row, under VARCHAR's 65,535 bytes
# An intent of a process on another host is finished once it is this old: its writer cannot be
# asked whether it still runs, and a batch takes milliseconds to seconds.
_FOREIGN_INTENT_AGE_S = 60
# How long an open waits for another process's creation of the collections to complete.
_CONCURRENT_CREATE_S = 30
# Who wrote an intent: host, process id and a token unique to this process (a later process
# with a reused pid is told apart by it; a forked child draws its own). Read by _finishable.
_HOST = socket.gethostname()
_token = secrets.token_hex(8)


def _new_token() -> None:
    global _token
    _token = secrets.token_hex(8)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_token)


def _owner() -> list[Any]:
    return [_HOST, os.getpid(), _token]



class MilvusHistory:
    """Implements protocols.HistoryStore on a Milvus server collection.

    No background extraction queue: processes on several machines would need to claim
    its jobs from one another. Memory refuses background_extraction with this history.
    """

    keeps_jobs = False

    def __init__(self, config: VectorStoreConfig) -> None:
        from pymilvus import MilvusClient

        self.name = f"{config.collection_name}_history"
        self.intents_name = f"{config.collection_name}_intents"
        self._where = f"{config.uri} collection {self.name!r}"
        self._lock = threading.Lock()
        kwargs: dict[str, Any] = {k: v for k, v in (("token", config.token), ("db_name", config.db_name)) if v}
        try:
            self._client = MilvusClient(uri=config.uri, **kwargs)
        except Exception as exc:
            raise HistoryError(f"cannot connect to Milvus at {config.uri} for history: {exc}") from exc
        # Another process may be creating these collections at this moment; each gets its index last,
        # so one that loads is complete, and until then the open is tried again.
        deadline = time.monotonic() + _CONCURRENT_CREATE_S
        while True:
            try:
                for name, create in ((self.name, self._create), (self.intents_name, self._create_intents)):
                    if not self._client.has_collection(name):
                        create()
                    self._client.load_collection(name)
                break
            except Exception as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                self._client.close()
                raise HistoryError(f"cannot open history {self._where}: {exc}") from exc

    def record(self, events: Sequence[HistoryEvent]) -> None:
        if not events:
            return
        base = time.time_ns()
        rows = [_to_row(e, base + i) for i, e in enumerate(events)]
        # Upsert: an intent finished twice (see the journal below) writes the same event ids again.
        self._call("write", lambda: self._client.upsert(self.name, rows))

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
    # Intents live in ``<collection>_intents`` on the server, so a batch cut by a kill -9 is
    # finished by the next open, as with SQLite. A server has no transaction spanning two
    # collections; what stands in for one: an intent is written before the store is touched;
    # the events it carries keep their ids and are upserted (a replay writes the same rows);
    # the intent is deleted only after its events are in. Every step is idempotent, so an intent
    # finished twice (its writer's last step and a recovering process's) leaves one outcome.
    def begin(self, intent: str) -> int:
        # Time-ordered across processes of one host (intents() replays oldest first), with random
        # low digits so two processes starting a batch in the same microsecond differ.
        intent_id = time.time_ns() // 1000 * 1000 + secrets.randbelow(1000)
        self._write_intent(intent_id, 0, intent)
        return intent_id

    def commit(self, intent_id: int | None, events: Sequence[HistoryEvent], *, reset: bool = False,
               queue: Sequence[str] = (), done: Sequence[int] = ()) -> None:
        if queue or done:
            raise HistoryError(f"history {self._where} keeps no extraction queue (background_extraction needs "
                               "an SQLite history: set history_db_path)")
        if reset:
            self.reset()
        self.record(events)
        if intent_id is not None:
            self.discard(intent_id)

    def jobs(self) -> list[tuple[int, str]]:
        return []

    def mark(self, intent_id: int, intent: str) -> None:
        # A new version first, then the old one goes: a crash in between leaves both, and
        # intents() reads the newest complete version.
        versions = {v for i, v, _, _ in self._intent_parts() if i == intent_id}
        self._write_intent(intent_id, max(versions, default=-1) + 1, intent)
        for version in versions:
            self._call("journal", lambda v=version: self._client.delete(
                self.intents_name, filter=f"intent == {intent_id} and version == {v}"))

    def discard(self, intent_id: int) -> None:
        self._call("journal", lambda: self._client.delete(self.intents_name, filter=f"intent == {intent_id}"))

    def intents(self) -> list[tuple[int, str]]:
        """The intents this process may finish: its own, and those of writers no longer running."""
        chunks: dict[tuple[int, int], dict[int, str]] = {}
        parts_of: dict[tuple[int, int], int] = {}
        owners: dict[int, str] = {}
        for intent_id, version, part, row in self._intent_parts():
            chunks.setdefault((intent_id, version), {})[part] = row["body"]
            parts_of[(intent_id, version)] = int(row["parts"])
            owners[intent_id] = row["owner"]
        newest: dict[int, str] = {}
        for (intent_id, version), got in sorted(chunks.items()):
            if len(got) == parts_of[(intent_id, version)]:  # complete: a later version replaces an earlier
                newest[intent_id] = "".join(got[p] for p in sorted(got))
        return [(i, body) for i, body in sorted(newest.items()) if _finishable(owners[i], i)]

    def _write_intent(self, intent_id: int, version: int, intent: str) -> None:
        # ASCII JSON (escapes for the rest), cut into pieces a VARCHAR holds; one insert lands whole.
        text = json.dumps(json.loads(intent))
        pieces = [text[i:i + _INTENT_PIECE] for i in range(0, len(text), _INTENT_PIECE)] or [""]
        owner = json.dumps(_owner())
        rows = [{"id": f"{intent_id}:{version}:{n}", "intent": intent_id, "version": version, "part": n,
                 "parts": len(pieces), "owner": owner, "body": piece, "placeholder": [0.0] * _PLACEHOLDER_DIM}
                for n, piece in enumerate(pieces)]
        self._call("journal", lambda: self._client.insert(self.intents_name, rows))

    def _intent_parts(self) -> list[tuple[int, int, int, dict[str, Any]]]:
        rows = self._call("journal", lambda: self._client.query(
            self.intents_name, filter="intent >= 0", output_fields=_INTENT_FIELDS, limit=_QUERY_CAP))
        return [(int(r["intent"]), int(r["version"]), int(r["part"]), r) for r in rows]

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
        self._create_indexed(self.name, schema)

    def _create_intents(self) -> None:
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
        schema.add_field("intent", DataType.INT64)
        schema.add_field("version", DataType.INT64)
        schema.add_field("part", DataType.INT64)
        schema.add_field("parts", DataType.INT64)
        schema.add_field("owner", DataType.VARCHAR, max_length=512)
        schema.add_field("body", DataType.VARCHAR, max_length=_INTENT_PIECE)
        schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=_PLACEHOLDER_DIM)
        self._create_indexed(self.intents_name, schema)

    def _create_indexed(self, name: str, schema: Any) -> None:
        self._client.create_collection(name, schema=schema, consistency_level="Strong")
        index = self._client.prepare_index_params()
        index.add_index(field_name="placeholder", index_type="FLAT", metric_type="L2")
        self._client.create_index(name, index)  # last: a collection that loads is complete

    def _call(self, what: str, fn: Any) -> Any:
        with self._lock:
            try:
                return fn()
            except Exception as exc:
                raise HistoryError(f"history {what} on {self._where} failed: {exc}") from exc


def _finishable(owner: str, intent_id: int) -> bool:
    """Whether this process may finish the intent: its own, or its writer's process is gone.

    Finishing the intent of a writer still at work would be harmless for the store (the same
    rows, upserted) but could undo a later write of that writer to the same memory, were its
    rows upserted after that write.
    """
    try:
        host, pid, token = json.loads(owner)
    except (ValueError, TypeError):
        return True
    if [host, pid, token] == _owner():
        return True
    if host != _HOST:
        return (time.time_ns() - intent_id) / 1e9 > _FOREIGN_INTENT_AGE_S
    return pid == os.getpid() or not _running(int(pid))  # our pid with another token: a past process


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        return True
    return True


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
