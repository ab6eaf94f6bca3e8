"""The history of every change, in an embedded SQLite database (WAL mode).

History is append-only: deleting a memory adds a DELETE event and keeps the
earlier ones, so ``history(id)`` still explains a memory that is gone.

The same database holds the write journal (journal.py): ``begin`` records an
intent, ``commit`` appends a batch's events and clears its intent in one
transaction, which is what makes a batch atomic across store and history.
It also holds the background extraction queue (background.py), changed by
``commit`` in that same transaction.

Every sqlite3 error leaves this module as a HistoryError (``_run`` is the one
boundary), so callers never see the driver's exception types.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from localmem.errors import HistoryError
from localmem.history.migrations import migrate
from localmem.private import private_file
from localmem.records import Event, HistoryEvent

T = TypeVar("T")
_INSERT = ("INSERT INTO history (id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted,"
           " seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


class SQLiteHistory:
    keeps_jobs = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            private_file(self.path)  # 0600: its -wal and -shm take the same mode (private.py)
            # check_same_thread=False: Memory may be used from several threads;
            # the lock serialises access to the one connection.
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            migrate(self._conn)
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(f"cannot open history database {self.path}: {exc}") from exc

    # -- history ----------------------------------------------------------------
    def record(self, events: Sequence[HistoryEvent]) -> None:
        if events:
            self._transaction("write history", lambda: self._append(events))

    def history(self, memory_id: str) -> list[HistoryEvent]:
        return self._select("WHERE memory_id = ?", (memory_id,))

    def all_events(self) -> list[HistoryEvent]:
        """Every event, oldest first (used by export)."""
        return self._select("", ())

    def event_ids(self, ids: Sequence[str]) -> set[str]:
        def run() -> set[str]:
            found: set[str] = set()
            # SQLite caps bound parameters per statement; 500 is far below every build's limit.
            for start in range(0, len(ids), 500):
                chunk = list(ids[start:start + 500])
                marks = ", ".join("?" * len(chunk))
                found.update(r[0] for r in self._conn.execute(f"SELECT id FROM history WHERE id IN ({marks})", chunk))
            return found
        return self._run("read history", run)

    def reset(self) -> None:
        self._transaction("reset history", self._empty)

    # -- journal ----------------------------------------------------------------
    def begin(self, intent: str) -> int:
        """Record an intent (journal.Intent as JSON); return its id."""
        def run() -> int:
            cursor = self._conn.execute("INSERT INTO intents (body) VALUES (?)", (intent,))
            assert cursor.lastrowid is not None
            return cursor.lastrowid
        return self._transaction("write the write journal", run)

    def commit(self, intent_id: int | None, events: Sequence[HistoryEvent], *, reset: bool = False,
               queue: Sequence[str] = (), done: Sequence[int] = ()) -> None:
        """Append ``events`` (after emptying history and jobs when ``reset``), queue the jobs ``queue``,
        remove the jobs ``done`` and clear the intent (if any): all or nothing."""
        def run() -> None:
            if reset:
                self._empty()
            self._append(events)
            self._conn.executemany("INSERT INTO jobs (body) VALUES (?)", [(body,) for body in queue])
            self._conn.executemany("DELETE FROM jobs WHERE id = ?", [(job,) for job in done])
            if intent_id is not None:
                self._conn.execute("DELETE FROM intents WHERE id = ?", (intent_id,))
        self._transaction("write history", run)

    def mark(self, intent_id: int, intent: str) -> None:
        """Replace an intent's body (the Writer switches it to ``undo`` before rolling back)."""
        self._transaction("write the write journal",
                          lambda: self._conn.execute("UPDATE intents SET body = ? WHERE id = ?", (intent, intent_id)))

    def discard(self, intent_id: int) -> None:
        self._transaction("write the write journal",
                          lambda: self._conn.execute("DELETE FROM intents WHERE id = ?", (intent_id,)))

    def intents(self) -> list[tuple[int, str]]:
        """Intents left behind, oldest first."""
        return self._bodies("intents", "read the write journal")

    def jobs(self) -> list[tuple[int, str]]:
        """Queued background jobs, oldest first."""
        return self._bodies("jobs", "read the extraction queue")

    def close(self) -> None:
        self._run("close", self._conn.close)

    # -- internals --------------------------------------------------------------
    def _bodies(self, table: str, what: str) -> list[tuple[int, str]]:
        """(id, body) of every row of the journal's ``intents`` or the queue's ``jobs``, oldest first."""
        def run() -> list[tuple[int, str]]:
            return [(int(r[0]), str(r[1])) for r in self._conn.execute(f"SELECT id, body FROM {table} ORDER BY id")]
        return self._run(what, run)

    def _empty(self) -> None:
        # Queued extraction reads messages that a reset removes: it goes with them.
        self._conn.execute("DELETE FROM history")
        self._conn.execute("DELETE FROM jobs")

    def _append(self, events: Sequence[HistoryEvent]) -> None:
        if not events:
            return
        (seq,) = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM history").fetchone()
        self._conn.executemany(_INSERT, [
            (e.id, e.memory_id, e.old_memory, e.new_memory, e.event.value, e.created_at, e.updated_at,
             int(e.is_deleted), seq + i + 1) for i, e in enumerate(events)])

    def _select(self, where: str, params: tuple[str, ...]) -> list[HistoryEvent]:
        def run() -> list[tuple[str, str, str | None, str | None, str, str, str | None, int]]:
            return self._conn.execute(
                "SELECT id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted"
                f" FROM history {where} ORDER BY seq", params).fetchall()
        rows = self._run("read history", run)
        return [HistoryEvent(id=r[0], memory_id=r[1], old_memory=r[2], new_memory=r[3], event=Event(r[4]),
                             created_at=r[5], updated_at=r[6], is_deleted=bool(r[7])) for r in rows]

    def _transaction(self, what: str, fn: Callable[[], T]) -> T:
        def run() -> T:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn()
                self._conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full) leaves the transaction open: close it, or every later BEGIN fails.
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise
            return result
        return self._run(what, run)

    def _run(self, what: str, fn: Callable[[], T]) -> T:
        """The one place sqlite3 errors become HistoryError."""
        with self._lock:
            try:
                return fn()
            except sqlite3.Error as exc:
                # SQLite says "database or disk is full"; the store's errors say what the OS says.
                full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                cause = f"No space left on device: {exc}" if full else str(exc)
                raise HistoryError(f"history database {self.path}: cannot {what} ({cause})") from exc
