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
from collections.abc import Callable

from localmem.errors import LocalmemError

log = logging.getLogger("localmem")

# The thread's nice value (Linux): it yields the CPU to the application's own calls.
NICE = 10
# Queued add() calls read in one batch: enough to keep the decoder's 8 sequences busy across
# calls, few enough that a close() (which lets the batch under way finish) is not kept long.
BATCH = 16


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

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every job queued before this call is done; False on timeout or a job that failed."""
        before = {job_id for job_id, _ in self._jobs()}
        with self._cond:
            target = self._asked
            thread = self._thread
            finished = self._cond.wait_for(
                lambda: self._served >= target or self._stopping or thread is None or not thread.is_alive(),
                timeout)
        # Jobs queued by other threads meanwhile are not this call's to wait for.
        return finished and not before & {job_id for job_id, _ in self._jobs()}

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
