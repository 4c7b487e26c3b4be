"""The job the web app enqueues by dotted path: run one handler for one call.

What one job does, whichever worker class runs it and however many run beside it.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job

from flowhook.call import make_call
from flowhook.contract import INTERRUPTED, STOPPED, failure_reason
from flowhook.dedupe import release
from flowhook.exceptions import HandlerError, JobEnded, JobInterrupted, JobStopped, RetryableError
from flowhook.jobfigures import observed
from flowhook.registry import Registry, discover
from flowhook.settings import Settings
from workers.timeouts import run_handler_code

log = logging.getLogger(__name__)


@functools.cache
def current_settings() -> Settings:
    """This worker's settings, read once per process."""
    return Settings.from_env()


@functools.cache
def current_registry() -> Registry:
    """The handlers this worker runs, found once per process (before forking, when preloaded)."""
    return discover(current_settings())


class HandlerFailedError(Exception):
    """Stands in for a handler's exception in RQ's log and failure record, without its message."""


@observed  # flowhook/jobfigures.py: how the job ended and how long it ran, its trace id in its lines
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
        variables = run_handler_code(handler.run, call)
    except JobEnded as ending:
        # A cold stop may be tried again (its retries); a timeout or an operator's stop is final.
        if not isinstance(ending, JobInterrupted):
            job.retries_left = 0
        _note_failure(job, _ending_reason(job, ending))
        raise
    except Exception as error:
        if not isinstance(error, RetryableError):
            job.retries_left = 0  # only a RetryableError is worth another attempt
        _note_failure(job, failure_reason(error))
        if isinstance(error, HandlerError) or current_settings().log_values:
            raise  # messages meant for the flow, or logging values was switched on
        # RQ logs and stores the traceback: keep its frames, which help, but not the message,
        # which may hold the call's personal data (`ValueError: cannot parse john@example.org`).
        hidden = HandlerFailedError(f"{type(error).__name__} (message hidden; FLOWHOOK_LOG_VALUES=true shows it)")
        raise hidden.with_traceback(error.__traceback__) from None
    _release(job)
    return variables


def _ending_reason(job: Job, ending: JobEnded) -> str:
    """What the flow sees in ``<h>_error`` when its job was ended early."""
    if isinstance(ending, JobInterrupted):
        return INTERRUPTED
    if isinstance(ending, JobStopped):
        return STOPPED
    return f"the work took longer than its {job.timeout} s limit"


def _note_failure(job: Job, reason: str) -> None:
    """Keep the reason the flow is told; release the dedupe entry unless the job is tried again."""
    job.meta["error"] = reason
    try:
        job.save_meta()
    except RedisError as error:
        # The failure itself is written by the worker, which holds it until Redis is back; the
        # flow then sees "the job failed in the worker" without this reason.
        log.debug("job %s: its failure reason not saved: %s", job.id, error)
    if not job.retries_left:
        _release(job)


def _release(job: Job) -> None:
    try:
        release(job)
    except RedisError as error:
        # Harmless: the entry expires, and an identical call meanwhile finds the job finished and
        # starts anew. (The worker logs the outage once; this is one line per job.)
        log.debug("job %s: dedupe entry left to expire: %s", job.id, error)


def _save_progress(job: Job, value: str) -> None:
    job.meta["progress"] = value
    try:
        job.save_meta()
    except RedisError as error:
        # Progress is a nicety for the flow: the work goes on without it while Redis is away.
        log.debug("job %s: progress not saved: %s", job.id, error)
