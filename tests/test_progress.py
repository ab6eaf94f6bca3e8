"""progress.bar draws on a terminal and nowhere else: a real pty stands in for the terminal."""

from __future__ import annotations

import io
import os
import pty

import pytest

from localmem import progress


def _on_a_pty(monkeypatch: pytest.MonkeyPatch, total: int, **options: object) -> bytes:
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 0-column pty draws nothing
    terminal = os.fdopen(follower, "w", encoding="utf-8")
    monkeypatch.setattr("sys.stderr", terminal)
    with progress.bar(total, "working", unit="msg", **options) as step:  # type: ignore[arg-type]
        for _ in range(total):
            step(1)
    terminal.flush()
    os.set_blocking(leader, False)
    try:
        return os.read(leader, 1 << 16)
    except BlockingIOError:
        return b""
    finally:
        terminal.close()
        os.close(leader)


def test_a_bar_shows_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    shown = _on_a_pty(monkeypatch, 40)
    assert b"working" in shown and b"/40 [" in shown  # tqdm redraws at most every 0.1 s: the count may lag


def test_short_or_quiet_work_shows_nothing_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _on_a_pty(monkeypatch, progress.AT_LEAST - 1) == b""
    assert _on_a_pty(monkeypatch, 40, quiet=True) == b""


def test_nothing_is_written_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    with progress.bar(1000, "working") as step:
        step(1000)
    assert log.getvalue() == ""
