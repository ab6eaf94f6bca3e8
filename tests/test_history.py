import sqlite3
import uuid
from pathlib import Path

import pytest

from localmem.errors import HistoryError
from localmem.history.migrations import MIGRATIONS, migrate
from localmem.history.sqlite import SQLiteHistory
from localmem.records import Event, HistoryEvent, now_iso


def _event(memory_id: str, event: Event, old: str | None, new: str | None) -> HistoryEvent:
    return HistoryEvent(str(uuid.uuid4()), memory_id, old, new, event, now_iso(), None, event is Event.DELETE)


def test_events_come_back_oldest_first_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    history = SQLiteHistory(path)
    history.record([_event("m1", Event.ADD, None, "a"), _event("m2", Event.ADD, None, "x")])
    history.record([_event("m1", Event.UPDATE, "a", "b")])
    history.record([_event("m1", Event.DELETE, "b", None)])
    history.close()
    reopened = SQLiteHistory(path)
    events = reopened.history("m1")
    assert [e.event for e in events] == [Event.ADD, Event.UPDATE, Event.DELETE]
    assert (events[1].old_memory, events[1].new_memory) == ("a", "b")
    assert events[2].is_deleted
    assert reopened.history("nope") == []
    assert len(reopened.all_events()) == 4
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failed_batch_writes_nothing(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "h.sqlite")
    good = _event("m1", Event.ADD, None, "a")
    history.record([good])
    with pytest.raises(Exception, match="history"):
        history.record([_event("m2", Event.ADD, None, "b"), good])  # duplicate primary key
    assert history.history("m2") == []


def test_migrations_apply_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.sqlite", isolation_level=None)
    assert migrate(conn) == [name for name, _ in MIGRATIONS]
    assert migrate(conn) == []


def test_read_failures_are_history_errors_not_sqlite_ones(tmp_path: Path) -> None:
    from localmem import HistoryError

    path = tmp_path / "h.sqlite"
    history = SQLiteHistory(path)
    history.record([_event("m1", Event.ADD, None, "a")])
    other = sqlite3.connect(path)
    other.execute("DROP TABLE history")
    other.commit()
    other.close()
    for read in (lambda: history.history("m1"), history.all_events, lambda: history.event_ids(["x"])):
        with pytest.raises(HistoryError, match=str(path)):
            read()
    history.close()


def test_a_commit_appends_events_and_clears_its_intent_together(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "h.sqlite")
    first = history.begin('{"state": "redo"}')
    second = history.begin('{"state": "redo"}')
    history.commit(first, [_event("m1", Event.ADD, None, "a")])
    assert [i for i, _ in history.intents()] == [second]
    with pytest.raises(Exception, match="history"):
        history.commit(second, [history.history("m1")[0]])  # a duplicate event id: nothing changes
    assert [i for i, _ in history.intents()] == [second] and len(history.all_events()) == 1
    history.close()


def test_a_full_disk_is_named_as_such(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "h.sqlite")
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL

    def write() -> None:
        raise full

    try:
        with pytest.raises(HistoryError, match=r"cannot write history \(No space left on device: database or disk"):
            history._run("write history", write)
    finally:
        history.close()
