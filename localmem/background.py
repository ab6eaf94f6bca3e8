"""Extraction after add() has returned: a durable queue of jobs and the one thread that runs them.

With ``background_extraction``, add(infer=True) stores the messages (episodes and their
contexts: findable at once) and queues a ``jobs.Job`` in the same transaction (writer.py,
history/sqlite.py), then returns. This thread reads the queue oldest first, extracts each
job's facts and writes them, clearing the job in the transaction that writes its facts.
So a job acknowledged by add() is done exactly once: a crash before its facts are written
leaves it queued (the next open runs it), a crash while they are written is finished by
the journal with the job cleared. Why: an add with the model takes ~0.6 s a turn on two
cores, most of a chat turn's budget; its episodes take ~20 ms.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from localmem.errors import LocalmemError

log = logging.getLogger("localmem")

# The thread's nice value (Linux): it yields the CPU to the application's own calls.
NICE = 10
# Queued add() calls read in one batch: enough to keep the decoder's 8 sequences busy across
# calls, few enough that a close() (which lets the batch under way finish) is not kept long.
BATCH = 16


@dataclass(frozen=True)
class Progress:
    """Where a wait for extraction ended.

    ``through`` is the last job it covered (those queued when the first of a series of waits
    began; 0 when none were): a caller that waits in slices (a client of ``localmem serve``)
    passes it back, so jobs other callers queue meanwhile never extend its wait.
    """

    done: bool  # no job up to ``through`` is queued any more
    failed: bool  # the thread went through them and some stay queued: failed, tried again on the next add or open
    through: int
    queued: int  # jobs queued now, any caller's

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Progress:
        return cls(done=bool(body["done"]), failed=bool(body["failed"]), through=int(body["through"]),
                   queued=int(body["queued"]))


class BackgroundExtractor:
    """Runs queued jobs on one daemon thread, started by the first ``notify``.

    ``jobs`` lists the queue (id, body), oldest first; ``run`` does a batch of them (up to
    BATCH, their turns decoded together) and clears each. Jobs of a batch that raises stay
    queued: logged, and tried again on the next ``notify`` (the next add) or the next open;
    ``wait`` reports them.
    """

    def __init__(self, jobs: Callable[[], list[tuple[int, str]]],
                 run: Callable[[list[tuple[int, str]]], None]) -> None:
        self._jobs = jobs
        self._run = run
        self._cond = threading.Condition()
        self._asked = 0  # notify() calls so far
        self._served = 0  # the last of them whose queue the thread has gone through
        self._batches = 0  # batches done or failed so far: each wakes the waits, which look at the queue again
        self._stopping = False
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        """New jobs may be queued: go through the queue (again)."""
        with self._cond:
            if self._stopping:
                return
            self._asked += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="localmem-extraction", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait(self, timeout: float | None = None, through: int | None = None) -> Progress:
        """Block until no job up to ``through`` (default: every job queued now) is queued, or ``timeout`` passes.

        Ends early, ``failed``, when the thread has gone through the queue since this call began
        and some of those jobs are still there.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            idle = self._thread is None
        if idle and self._jobs():
            self.notify()  # jobs left by an earlier process, not started yet: a wait for them starts them
        with self._cond:
            target = self._asked
        last = through
        while True:
            with self._cond:
                batches = self._batches
                thread = self._thread
                # Read before the queue: a round that ended before the read left in it only what failed.
                went_through = (self._served >= target or self._stopping or thread is None
                                or not thread.is_alive())
            ids = [job_id for job_id, _ in self._jobs()]
            last = max(ids, default=0) if last is None else last
            done = not any(i <= last for i in ids)
            left = None if deadline is None else deadline - time.monotonic()
            if done or went_through or (left is not None and left <= 0):
                return Progress(done=done, failed=went_through and not done, through=last, queued=len(ids))
            self._wait_for_news(batches, target, left)

    def _wait_for_news(self, batches: int, target: int, timeout: float | None) -> None:
        """Until a batch ends (the queue may have changed), the round ``target`` is served, or close()."""
        with self._cond:
            self._cond.wait_for(lambda: self._batches != batches or self._served >= target or self._stopping, timeout)

    def close(self) -> None:
        """Stop after the batch under way (the jobs after it stay queued for the next open)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _loop(self) -> None:
        _yield_to_callers()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._asked > self._served or self._stopping)
                if self._stopping:
                    self._cond.notify_all()
                    return
                asked = self._asked
            self._round()
            with self._cond:
                self._served = asked
                self._cond.notify_all()

    def _round(self) -> None:
        """Go through the queue as it is now, a batch at a time."""
        try:
            queued = self._jobs()
        except LocalmemError as exc:
            log.warning("background extraction cannot read its queue (%s); tried again on the next add", exc)
            return
        failed = 0
        for start in range(0, len(queued), BATCH):
            if self._stopping:
                return
            batch = queued[start:start + BATCH]
            try:
                self._run(batch)
            except Exception as exc:  # the thread must outlive any one batch
                failed += 1
                if failed == 1:
                    log.warning("background extraction could not do jobs %d-%d (%s: %s); what was not done "
                                "stays queued and is tried again on the next add or open", batch[0][0],
                                batch[-1][0], type(exc).__name__, exc, exc_info=not isinstance(exc, LocalmemError))
            finally:
                with self._cond:
                    self._batches += 1
                    self._cond.notify_all()
        if failed > 1:
            log.warning("background extraction: %d batches failed this round and stay queued", failed)


def _yield_to_callers() -> None:
    """Lower this thread's priority, and so that of the threads it starts (llama.cpp's OpenMP team
    is created by the thread that first decodes, and inherits its nice value).

    Why: the model keeps both cores busy for seconds, and an add() or search() beside it then
    waits for CPU time. With the extraction niced, the application's calls get the cores first
    and extraction takes what is left. Measured on 2 cores: one-turn add() beside extraction p50
    72 -> 58 ms (p90 129 -> 106); a 13-turn session's add() 1.1 -> 0.73 s, and the sessions'
    extraction did not take longer for it (0.540 -> 0.478 s a turn, host drift included).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
