"""Numbered schema migrations for the history database.

Each migration runs in its own transaction and is recorded in ``_migrations``
when applied, so opening an old file upgrades it once and a failed step leaves
the file as it was. Append new migrations; never edit an applied one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def _m001_history(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE history (
            id          TEXT PRIMARY KEY,
            memory_id   TEXT NOT NULL,
            old_memory  TEXT,
            new_memory  TEXT,
            event       TEXT NOT NULL CHECK (event IN ('ADD', 'UPDATE', 'DELETE', 'NONE')),
            created_at  TEXT NOT NULL,
            updated_at  TEXT,
            is_deleted  INTEGER NOT NULL DEFAULT 0,
            seq         INTEGER NOT NULL
        )
        """
    )
    # history(memory_id) is the only read path; seq keeps insertion order exact
    # even when two events share a timestamp.
    conn.execute("CREATE INDEX history_memory ON history (memory_id, seq)")


def _m002_intents(conn: sqlite3.Connection) -> None:
    # The write journal (localmem/journal.py): one row per batch in flight,
    # deleted in the same transaction that appends the batch's history.
    conn.execute("CREATE TABLE intents (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")


def _m003_jobs(conn: sqlite3.Connection) -> None:
    # Extraction that add() acknowledged and left to the background (localmem/background.py): queued
    # and cleared in the same transactions as the writes around it, so none is lost or run twice.
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")


def _m004_expire_event(conn: sqlite3.Connection) -> None:
    # EXPIRE: a later message said a memory no longer holds (localmem/currency.py). SQLite cannot
    # change a CHECK constraint in place, so the table is rebuilt with its rows and order.
    conn.execute(
        """
        CREATE TABLE history_new (
            id          TEXT PRIMARY KEY,
            memory_id   TEXT NOT NULL,
            old_memory  TEXT,
            new_memory  TEXT,
            event       TEXT NOT NULL CHECK (event IN ('ADD', 'UPDATE', 'DELETE', 'NONE', 'EXPIRE')),
            created_at  TEXT NOT NULL,
            updated_at  TEXT,
            is_deleted  INTEGER NOT NULL DEFAULT 0,
            seq         INTEGER NOT NULL
        )
        """
    )
    conn.execute("INSERT INTO history_new SELECT id, memory_id, old_memory, new_memory, event, created_at, updated_at, "
                 "is_deleted, seq FROM history")
    conn.execute("DROP TABLE history")
    conn.execute("ALTER TABLE history_new RENAME TO history")
    conn.execute("CREATE INDEX history_memory ON history (memory_id, seq)")


MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("001_history", _m001_history),
    ("002_intents", _m002_intents),
    ("003_jobs", _m003_jobs),
    ("004_expire_event", _m004_expire_event),
)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied: list[str] = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        # The connection is in autocommit mode (isolation_level=None), so this
        # BEGIN makes the DDL itself transactional: all of a step, or none.
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", (name,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(name)
    return applied
