"""The history of every change, in an embedded SQLite database (WAL mode).

History is append-only: deleting a memory adds a DELETE event and keeps the
earlier ones, so ``history(id)`` still explains a memory that is gone.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from localmem.errors import HistoryError
from localmem.history.migrations import migrate
from localmem.records import Event, HistoryEvent


class SQLiteHistory:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False: Memory may be used from several threads;
            # the lock below serialises access to the one connection.
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            migrate(self._conn)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open history database {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def record(self, events: Sequence[HistoryEvent]) -> None:
        if not events:
            return
        rows = [(e.id, e.memory_id, e.old_memory, e.new_memory, e.event.value, e.created_at,
                 e.updated_at, int(e.is_deleted)) for e in events]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    (seq,) = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM history").fetchone()
                    self._conn.executemany(
                        "INSERT INTO history (id, memory_id, old_memory, new_memory, event, created_at,"
                        " updated_at, is_deleted, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(*row, seq + i + 1) for i, row in enumerate(rows)],
                    )
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise HistoryError(f"cannot write history to {self.path}: {exc}") from exc

    def history(self, memory_id: str) -> list[HistoryEvent]:
        return self._select("WHERE memory_id = ?", (memory_id,))

    def all_events(self) -> list[HistoryEvent]:
        """Every event, oldest first (used by export)."""
        return self._select("", ())

    def event_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._lock:
            # SQLite caps bound parameters per statement; 500 is far below every build's limit.
            for start in range(0, len(ids), 500):
                chunk = list(ids[start:start + 500])
                marks = ", ".join("?" * len(chunk))
                found.update(r[0] for r in self._conn.execute(f"SELECT id FROM history WHERE id IN ({marks})", chunk))
        return found

    def _select(self, where: str, params: tuple[str, ...]) -> list[HistoryEvent]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted"
                f" FROM history {where} ORDER BY seq", params).fetchall()
        return [HistoryEvent(id=r[0], memory_id=r[1], old_memory=r[2], new_memory=r[3], event=Event(r[4]),
                             created_at=r[5], updated_at=r[6], is_deleted=bool(r[7])) for r in rows]

    def reset(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM history")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
