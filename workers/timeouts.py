"""What ends a running job early: its own timeout, an operator's stop, or the worker's cold stop.

Each ending is a :class:`~flowhook.exceptions.JobEnded`, a ``BaseException``, as Celery's gevent
pool and dramatiq raise theirs: a handler's ``except Exception`` cannot keep a job past it.

In a ``pool`` worker each job's greenlet carries a ``gevent.Timeout`` of its own, and the handler's
code runs in a greenlet of its own beneath the job's (:func:`run_handler_code`): when the job ends
early, the job's greenlet passes the ending on to the handler, gives it ``JOB_END_GRACE`` seconds to
unwind, and then answers the job whether or not the handler let go. A handler that catches even a
``BaseException`` and carries on is left running, detached, its outcome discarded: its slot is free
and its flow is answered. A handler that computes without ever waiting cannot be interrupted at
all; past its timeout its heartbeats stop and it is reaped as abandoned.

The one-at-a-time classes time a job with RQ's ``SIGALRM`` death penalty, raising the same
:class:`~flowhook.exceptions.JobTimedOut`.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

from rq.timeouts import BaseDeathPenalty, JobTimeoutException, UnixSignalDeathPenalty

from flowhook import defaults
from flowhook.exceptions import JobEnded, JobInterrupted, JobStopped, JobTimedOut
from flowhook.offload import gevent_is_running

log = logging.getLogger(__name__)

Result = TypeVar("Result")


def _timed_out(timeout: int) -> JobTimedOut:
    return JobTimedOut(f"the job ran past its {timeout} s timeout")


class GeventDeathPenalty(BaseDeathPenalty):
    """A job timeout for the greenlet that runs the job, as RQ uses its death penalties.

    RQ asks for its own ``JobTimeoutException``, an ``Exception``; this raises
    :class:`~flowhook.exceptions.JobTimedOut` instead. It is armed only while the handler's code
    runs: :func:`run_handler_code` disarms it the moment the handler is done, so that no ending
    reaches the job's greenlet while it writes the job's outcome and ends. Armed penalties are
    known by job id (for an operator's stop and the worker's cold stop) and by greenlet.
    """

    running: ClassVar[dict[str, GeventDeathPenalty]] = {}  # by job id, while armed
    by_greenlet: ClassVar[dict[Any, GeventDeathPenalty]] = {}

    def __init__(self, timeout: int, exception: type[Exception] | None = None, **kwargs: Any) -> None:
        super().__init__(timeout, exception, **kwargs)  # type: ignore[no-untyped-call]  # RQ's is unannotated
        self._job_id: str = kwargs.get("job_id") or ""
        self._deadline: Any = None
        self.greenlet: Any = None

    def setup_death_penalty(self) -> None:
        """Start this greenlet's timeout (none for a job whose timeout is -1, as in RQ)."""
        import gevent  # noqa: PLC0415 - only in a pool worker, which gevent patched first

        self.greenlet = gevent.getcurrent()
        GeventDeathPenalty.running[self._job_id] = GeventDeathPenalty.by_greenlet[self.greenlet] = self
        if self._timeout > 0:
            self._deadline = gevent.Timeout(self._timeout, _timed_out(self._timeout))
            self._deadline.start()

    def cancel_death_penalty(self) -> None:
        """Stop the timeout: the handler is done (again when RQ leaves the penalty: it does nothing then)."""
        if GeventDeathPenalty.running.get(self._job_id) is self:
            del GeventDeathPenalty.running[self._job_id]
        GeventDeathPenalty.by_greenlet.pop(self.greenlet, None)
        if self._deadline is not None:
            self._deadline.close()
            self._deadline = None

    @property
    def armed(self) -> bool:
        """Whether the handler's code still runs under this penalty."""
        return GeventDeathPenalty.running.get(self._job_id) is self


class SignalDeathPenalty(UnixSignalDeathPenalty):
    """RQ's ``SIGALRM`` timeout for the one-at-a-time classes, raising :class:`JobTimedOut` for a job.

    RQ's fork worker times its own wait for the work horse with the same class and another
    exception, which it catches: that one is raised as RQ asks.
    """

    def handle_death_penalty(self, signum: int, frame: object) -> None:
        if self._exception is not JobTimeoutException:
            super().handle_death_penalty(signum, frame)  # type: ignore[no-untyped-call]  # RQ's is unannotated
        raise _timed_out(self._timeout)


def end_job(job_id: str, ending: JobEnded) -> bool:
    """Raise ``ending`` in the greenlet running ``job_id``'s handler; whether one was.

    gevent delivers it at the loop's next turn: it is raised then only if the handler still runs,
    so that a job that has just finished writes its outcome undisturbed.
    """
    import gevent  # noqa: PLC0415 - only in a pool worker, which gevent patched first

    penalty = GeventDeathPenalty.running.get(job_id)
    if penalty is None:
        return False

    def deliver() -> None:
        if penalty.armed:
            penalty.greenlet.throw(ending)

    gevent.get_hub().loop.run_callback(deliver)
    return True


def stop_job(job_id: str) -> bool:
    """End a job at an operator's request (RQ's stop-job command); whether it was running here."""
    return end_job(job_id, JobStopped("the job was stopped by an operator"))


def interrupt_running_jobs() -> int:
    """End every job whose handler is running, as the worker stops at once; returns how many."""
    return sum(
        end_job(job_id, JobInterrupted("the worker stopped at once")) for job_id in list(GeventDeathPenalty.running)
    )


def run_handler_code(function: Callable[..., Result], *args: Any) -> Result:
    """``function(*args)``, ended with its job whatever the function catches.

    Under gevent the handler's code runs in a greenlet of its own (with the job's context
    variables, so ``rq.get_current_job`` and the log's job fields hold there too), and the job's
    greenlet waits for it. When the job ends early the ending reaches the job's greenlet, which
    passes it on to the handler's, waits ``JOB_END_GRACE`` seconds for it to unwind, and raises it
    either way. Without gevent (the ``simple`` and ``fork`` classes) it is a plain call.

    Raises:
        JobEnded: the job's timeout, an operator's stop or the worker's cold stop.
        Exception: whatever the function raised.
    """
    if not gevent_is_running():
        return function(*args)
    import gevent  # noqa: PLC0415 - patched already: gevent_is_running

    def run_captured() -> tuple[Result | None, BaseException | None]:
        # A greenlet that dies of an exception has gevent print its traceback (and message, which
        # may hold the call's personal data) on stderr: the job's greenlet raises it instead.
        try:
            return function(*args), None
        except BaseException as error:  # passed on whole, an ending included
            return None, error

    handler = gevent.spawn(contextvars.copy_context().run, run_captured)
    try:
        value, error = handler.get()
    except JobEnded as ending:
        _disarm()  # no second ending while this one is passed on
        handler.kill(ending, block=True, timeout=defaults.JOB_END_GRACE)
        if not handler.dead:
            log.error(
                "the handler ignored its job's end (%s) for %.0f s: the job is answered, its slot is free, "
                "and the handler's code runs on, detached, its outcome discarded; a handler must not catch "
                "BaseException",
                type(ending).__name__,
                defaults.JOB_END_GRACE,
            )
        raise
    _disarm()  # the handler is done: what follows writes the outcome, which nothing may interrupt
    if error is not None:
        raise error
    return cast(Result, value)  # None only with an error


def _disarm() -> None:
    """End the death penalty of the job this greenlet runs, if it has one."""
    import gevent  # noqa: PLC0415 - only in a pool worker, which gevent patched first

    penalty = GeventDeathPenalty.by_greenlet.get(gevent.getcurrent())
    if penalty is not None:
        penalty.cancel_death_penalty()
