"""What ends a running job early in a pool worker: its own timeout, or the worker's cold stop.

RQ's simple worker times a job with ``SIGALRM``, one alarm per process: each new alarm replaces the
last, so it cannot time many jobs at once. Here each job's greenlet carries a ``gevent.Timeout`` of
its own, raised at its next wait (for I/O, a sleep, a lock): the job fails with RQ's own
``JobTimeoutException`` and its neighbours run on. A handler that computes without ever waiting
cannot be interrupted this way; past its timeout its heartbeats stop and it is reaped as abandoned.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gevent
from rq.timeouts import BaseDeathPenalty, JobTimeoutException

from flowhook.exceptions import JobInterrupted


class GeventDeathPenalty(BaseDeathPenalty):
    """A job timeout for the greenlet that runs the job, as RQ's death penalties are used.

    It also keeps track of the greenlets inside a death penalty: those are running handler code,
    which a cold stop interrupts (and no others, which may be writing an outcome to Redis).
    """

    running: ClassVar[set[gevent.Greenlet]] = set()

    def __init__(self, timeout: int, exception: type[Exception] = JobTimeoutException, **kwargs: Any) -> None:
        super().__init__(timeout, exception, **kwargs)  # type: ignore[no-untyped-call]  # RQ's is unannotated
        self._deadline: gevent.Timeout | None = None

    def setup_death_penalty(self) -> None:
        """Start this greenlet's timeout (none for a job whose timeout is -1, as in RQ)."""
        GeventDeathPenalty.running.add(gevent.getcurrent())
        if self._timeout > 0:
            message = f"Task exceeded maximum timeout value ({self._timeout} seconds)"
            self._deadline = gevent.Timeout(self._timeout, self._exception(message))
            self._deadline.start()

    def cancel_death_penalty(self) -> None:
        """Stop the timeout: the job is over."""
        GeventDeathPenalty.running.discard(gevent.getcurrent())
        if self._deadline is not None:
            self._deadline.close()
            self._deadline = None


def interrupt_running_jobs() -> int:
    """Raise :class:`JobInterrupted` in every greenlet that runs handler code; returns how many."""
    victims = list(GeventDeathPenalty.running)
    for greenlet in victims:
        greenlet.kill(JobInterrupted("the worker stopped at once"), block=False)
    return len(victims)
