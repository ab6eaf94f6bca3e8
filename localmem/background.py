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

import logging
import threading
from collections.abc import Callable

from localmem.errors import LocalmemError

log = logging.getLogger("localmem")


class BackgroundExtractor:
    """Runs queued jobs on one daemon thread, started by the first ``notify``.

    ``jobs`` lists the queue (id, body), oldest first; ``run`` does one job and clears it.
    A job that raises stays queued: it is logged and tried again on the next ``notify``
    (the next add) or the next open, and ``wait`` reports it.
    """

    def __init__(self, jobs: Callable[[], list[tuple[int, str]]], run: Callable[[int, str], None]) -> None:
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
        with self._cond:
            target = self._asked
            thread = self._thread
            finished = self._cond.wait_for(
                lambda: self._served >= target or self._stopping or thread is None or not thread.is_alive(),
                timeout)
        return finished and not self._jobs()

    def close(self) -> None:
        """Stop after the job under way (the others stay queued for the next open)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._asked > self._served or self._stopping)
                if self._stopping:
                    self._cond.notify_all()
                    return
                asked = self._asked
            failed: list[int] = []
            try:
                queued = self._jobs()
            except LocalmemError as exc:
                log.warning("background extraction cannot read its queue (%s); tried again on the next add", exc)
                queued = []
            for job_id, body in queued:
                if self._stopping:
                    break
                try:
                    self._run(job_id, body)
                except Exception as exc:  # the thread must outlive any one job
                    failed.append(job_id)
                    if len(failed) == 1:
                        log.warning("background extraction could not do job %d (%s: %s); it stays queued and is "
                                    "tried again on the next add or open", job_id, type(exc).__name__, exc,
                                    exc_info=not isinstance(exc, LocalmemError))
            if len(failed) > 1:
                log.warning("background extraction: %d jobs failed this round and stay queued", len(failed))
            with self._cond:
                self._served = asked
                self._cond.notify_all()
