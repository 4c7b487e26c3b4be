"""The job the web app enqueues by dotted path: run one handler for one call.

What one job does, whichever worker class runs it and however many run beside it: it runs the
handler, keeps the reason a flow is told when it fails, and at its end releases the call's dedupe
entry (unless it is tried again) and counts how it ended, in one round trip to Redis, or with the
other jobs' ends of the second in a pool worker (:class:`JobEnds`); its log lines carry the call's
trace id.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job

from flowhook import jobfigures, logs
from flowhook.call import make_call
from flowhook.contract import INTERRUPTED, STOPPED, failure_reason
from flowhook.dedupe import release
from flowhook.exceptions import HandlerError, JobEnded, JobInterrupted, JobStopped, JobTimedOut, RetryableError
from flowhook.registry import Registry, discover
from flowhook.settings import Settings
from workers.timeouts import run_handler_code

log = logging.getLogger(__name__)


# What this process's jobs run with, given once by the worker's start-up (workers/__main__.py)
# before it takes a job; a fork worker's work horses inherit both.
_settings: Settings | None = None
_registry: Registry | None = None


def prepare_jobs(settings: Settings) -> Registry:
    """Have this process's jobs run with the worker's ``settings``, and import their handlers now.

    Raises:
        HandlerModuleError: naming the handler module that cannot be used.
    """
    global _settings, _registry  # noqa: PLW0603 - one worker per process
    _registry = discover(settings)
    _settings = settings
    return _registry


def current_settings() -> Settings:
    """The settings the worker started with."""
    if _settings is None:
        raise RuntimeError("no worker started in this process: jobs run in `python -m workers`")
    return _settings


def current_registry() -> Registry:
    """The handlers this worker runs, imported at its start (before forking a work horse)."""
    if _registry is None:
        raise RuntimeError("no worker started in this process: jobs run in `python -m workers`")
    return _registry


class HandlerFailedError(Exception):
    """Stands in for a handler's exception in RQ's log and failure record, without its message."""


def run_handler(handler_name: str, payload: dict[str, Any]) -> dict[str, str]:
    """Run a handler for one call and return its answer variables as strings.

    Args:
        handler_name: The handler's module name.
        payload: The call's ids, params and input variables, as the web app validated them.

    Raises:
        Exception: whatever the handler raised, after its short reason was saved for the flow.
    """
    job = get_current_job()
    assert job is not None, "run_handler runs only as an RQ job"
    trace = job.meta.get("trace")
    started = time.monotonic()
    ended = jobfigures.FAILED
    with logs.job_context(handler_name, job.id, trace if isinstance(trace, str) else None):
        try:
            variables = _run(job, handler_name, payload)
            ended = jobfigures.DONE
            return variables
        except JobTimedOut:
            ended = jobfigures.TIMED_OUT
            raise
        except JobEnded:  # a cold stop, or an operator's
            ended = jobfigures.INTERRUPTED
            raise
        except Exception:
            # _run left retries only for a RetryableError; RQ runs the job again.
            ended = jobfigures.RETRIED if job.retries_left else jobfigures.FAILED
            raise
        finally:
            _end(job, handler_name, ended, time.monotonic() - started)


def _run(job: Job, handler_name: str, payload: dict[str, Any]) -> dict[str, str]:
    """The handler's answer; on failure, the reason the flow is told is saved first."""
    try:
        handler = current_registry().get(handler_name)
        if handler is None:
            raise HandlerError(f"this worker has no handler {handler_name!r}; deploy it to the workers too")
        call = make_call(
            handler,
            payload,
            idempotency_key=job.id,
            deadline=time.monotonic() + (job.timeout or handler.settings.job_timeout),
            report_progress=functools.partial(_save_progress, job),
        )
        return run_handler_code(handler.run, call)
    except JobEnded as ending:
        # A cold stop may be tried again (its retries); a timeout or an operator's stop is final.
        if not isinstance(ending, JobInterrupted):
            job.retries_left = 0
        _save_reason(job, _ending_reason(job, ending))
        raise
    except Exception as error:
        if not isinstance(error, RetryableError):
            job.retries_left = 0  # only a RetryableError is worth another attempt
        _save_reason(job, failure_reason(error))
        if isinstance(error, HandlerError) or current_settings().log_values:
            raise  # messages meant for the flow, or logging values was switched on
        # RQ logs and stores the traceback: keep its frames, which help, but not the message,
        # which may hold the call's personal data (`ValueError: cannot parse john@example.org`).
        hidden = HandlerFailedError(f"{type(error).__name__} (message hidden; FLOWHOOK_LOG_VALUES=true shows it)")
        raise hidden.with_traceback(error.__traceback__) from None


def _ending_reason(job: Job, ending: JobEnded) -> str:
    """What the flow sees in ``<h>_error`` when its job was ended early."""
    if isinstance(ending, JobInterrupted):
        return INTERRUPTED
    if isinstance(ending, JobStopped):
        return STOPPED
    return f"the work took longer than its {job.timeout} s limit"


def _save_reason(job: Job, reason: str) -> None:
    """Keep the reason the flow is told, before RQ writes the failure that wakes the flow's poll."""
    job.meta["error"] = reason
    try:
        job.save_meta()
    except RedisError as error:
        # The failure itself is written by the worker, which holds it until Redis is back; the
        # flow then sees "the job failed in the worker" without this reason.
        log.debug("job %s: its failure reason not saved: %s", job.id, error)


class JobEnds:
    """Jobs' ends held to be written to Redis together: their dedupe entries released, their figures.

    A pool worker ends hundreds of jobs a second; a round trip for each one's end cost about a tenth
    of its CPU. It writes them together once a second (workers/pool.py), in one round trip. Meanwhile
    a finished job's dedupe entry is harmless: an identical call finds the job finished and starts
    anew (flowhook/jobstore.py).
    """

    def __init__(self) -> None:
        self.released: list[Job] = []
        self.tallies: dict[str, jobfigures.Tally] = {}  # by deployment (queue name)

    def add(self, job: Job, handler_name: str, ended: str, seconds: float) -> None:
        """Hold one job's end: its entry released unless it is tried again, its figures counted."""
        if ended == jobfigures.DONE or not job.retries_left:
            self.released.append(job)  # an identical call from now on starts anew
        if current_settings().metrics:
            queue_name = job.origin.removesuffix(f".{handler_name}")
            self.tallies.setdefault(queue_name, jobfigures.Tally()).add(handler_name, ended, seconds)

    def write(self, connection: Redis) -> None:
        """Write the ends held so far, in one round trip; figures that failed to go wait for the next."""
        released, tallies = self.released, self.tallies
        if not released and not tallies:
            return
        self.released, self.tallies = [], {}
        try:
            with connection.pipeline(transaction=False) as pipe:
                release(released, pipe)
                for queue_name, tally in tallies.items():
                    tally.write(pipe, queue_name)
                pipe.execute()
        except RedisError as error:
            # Harmless: a dedupe entry expires (an identical call meanwhile finds its job finished
            # and starts anew); the counts are kept for the next write. The worker logs the outage.
            log.debug("%d jobs' dedupe entries left to expire, their ends counted later: %s", len(released), error)
            for queue_name, tally in tallies.items():
                self.tallies.setdefault(queue_name, jobfigures.Tally()).merge(tally)


# This process's held job ends, once a pool worker holds them (hold_job_ends); None: each job
# writes its own end as it ends (the simple and fork classes, one job at a time).
_held: JobEnds | None = None


def hold_job_ends() -> JobEnds:
    """From now on, hold this process's job ends for the caller to write (:meth:`JobEnds.write`)."""
    global _held  # noqa: PLW0603 - one collector per process, as the worker is
    if _held is None:
        _held = JobEnds()
    return _held


def _end(job: Job, handler_name: str, ended: str, seconds: float) -> None:
    """Release the dedupe entry unless the job is tried again, and count its end: now, or held."""
    if _held is not None:
        _held.add(job, handler_name, ended, seconds)
    else:
        ends = JobEnds()
        ends.add(job, handler_name, ended, seconds)
        ends.write(job.connection)
    log.info(
        "job %s (%s) %s in %.3f s",
        job.id,
        handler_name,
        ended,
        seconds,
        extra={"outcome": ended, "duration_ms": round(seconds * 1000, 3)},
    )


def _save_progress(job: Job, value: str) -> None:
    job.meta["progress"] = value
    try:
        job.save_meta()
    except RedisError as error:
        # Progress is a nicety for the flow: the work goes on without it while Redis is away.
        log.debug("job %s: progress not saved: %s", job.id, error)
