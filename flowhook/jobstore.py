"""The web side of the worker path: start a call's job once, find it again, wait for its result."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any, cast

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result
from rq.serializers import JSONSerializer

from flowhook import defaults, jobfigures, keys, logs, metrics
from flowhook.call import payload_of
from flowhook.connection import HandlerQueue, handler_queue
from flowhook.contract import DONE, FAILED, INTERRUPTED, PENDING, UNKNOWN_JOB, Envelope, Outcome
from flowhook.dedupe import UNRESOLVED, enqueue_once, fingerprint_of
from flowhook.registry import Handler
from flowhook.settings import Settings

# The job function, by dotted path: the web process never imports the worker's code.
JOB_FUNCTION = "workers.job.run_handler"

JOB_ID = re.compile(r"[0-9a-f]{32}")  # used with fullmatch: no trailing newline slips through
# Failure records RQ writes itself when a job's process is gone, not when the job raised.
_PROCESS_GONE = (
    "AbandonedJobError",
    "Work-horse terminated unexpectedly",
    "stuck in intermediate queue",
    "JobInterrupted",
)
# Longest single XREAD BLOCK of a long-poll (seconds): well inside the socket timeout.
WAIT_SLICE = defaults.REDIS_TIMEOUT / 2


def new_job_id() -> str:
    """A fresh, unguessable job id (32 hex digits); it doubles as the work's idempotency key."""
    return secrets.token_hex(16)


def owner_of(handler_name: str, process_instance_id: str) -> str:
    """Tag stored with a job so that only its own conversation and handler can poll it."""
    return hashlib.sha256(f"{handler_name}\0{process_instance_id}".encode()).hexdigest()


class JobStore:
    """Starts, finds and waits for the RQ jobs that run handlers in workers.

    Args:
        connection: The Redis that holds the queues.
        settings: The queues' names and lifetimes.
    """

    serializer = JSONSerializer

    def __init__(self, connection: Redis, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings
        self.queue_ttl = settings.queue_ttl
        self._queues: dict[str, Queue] = {}

    def queue(self, handler: str) -> Queue:
        """The queue of ``handler``'s jobs."""
        queue = self._queues.get(handler)
        if queue is None:
            queue = self._queues[handler] = handler_queue(self.settings, self.connection, handler)
        return queue

    def start(self, handler: Handler, envelope: Envelope, inputs: Mapping[str, Any], job_id: str | None = None) -> str:
        """Enqueue the call's job, or return the job of an identical call still unresolved.

        The dedupe entry and the job are written in one step (flowhook/dedupe.py), so an entry
        never points to a job that was not enqueued, and two identical calls never start two jobs.

        Args:
            handler: The handler to run.
            envelope: The call.
            inputs: The handler's input variables (what identifies an identical call).
            job_id: The id to give the job (an inline attempt's idempotency key); new if None.
        """
        dedupe_key = keys.dedupe(fingerprint_of(handler, envelope.process_instance_id, inputs))
        job = self._create(handler, envelope, inputs, job_id or new_job_id(), dedupe_key)
        running = enqueue_once(job, self.queue(handler.name), dedupe_key, self._lifetime(handler))
        if running != job.id:
            metrics.note_attached()  # flowhook/metrics.py: the call's path is "attach"
        return running

    def _create(
        self, handler: Handler, envelope: Envelope, inputs: Mapping[str, Any], job_id: str, dedupe_key: str
    ) -> Job:
        return self.queue(handler.name).create_job(
            JOB_FUNCTION,
            args=(handler.name, payload_of(envelope, inputs)),
            job_id=job_id,
            # RQ logs the description: the handler's name, never the variables.
            description=handler.name,
            timeout=handler.settings.job_timeout,
            ttl=self.queue_ttl,
            result_ttl=handler.settings.result_ttl,
            failure_ttl=handler.settings.result_ttl,
            meta={
                "owner": owner_of(handler.name, envelope.process_instance_id),
                "dedupe": dedupe_key,
                # flowhook/logs.py: the worker's lines for this job carry the call's trace id.
                "trace": logs.current_trace(),
            },
            retry=Retry(handler.settings.retries, list(handler.settings.retry_intervals))
            if handler.settings.retries
            else None,
        )

    def _lifetime(self, handler: Handler) -> int:
        """Longest a job can stay unresolved: waiting in the queue, then every attempt and pause."""
        attempts = 1 + handler.settings.retries
        pauses = sum(
            Retry.get_interval(n, list(handler.settings.retry_intervals)) for n in range(handler.settings.retries)
        )
        return self.queue_ttl + attempts * handler.settings.job_timeout + pauses

    def find(self, handler: Handler, process_instance_id: str, job_id: str) -> Job | None:
        """The job ``job_id`` names, if it still exists and belongs to this handler and conversation."""
        if not JOB_ID.fullmatch(job_id):
            return None
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=self.serializer)
        except NoSuchJobError:
            return None
        if not hmac.compare_digest(str(job.meta.get("owner", "")), owner_of(handler.name, process_instance_id)):
            return None
        return job

    def reap_if_abandoned(self, job: Job) -> None:
        """If the job's worker died, have RQ fail it (or retry it) now, not at the next maintenance.

        A running job's entry in RQ's started-job registry expires when its heartbeats stop;
        RQ's own cleanup then records the failure (AbandonedJobError), which wakes the waiters.
        """
        if job.get_status(refresh=False) != JobStatus.STARTED:
            return
        queue = HandlerQueue(job.origin, connection=self.connection, serializer=self.serializer)
        registry = queue.started_job_registry
        if job.id not in registry.get_expired_job_ids():
            return
        # RQ's lock on registry maintenance: a worker or another web process may be at it already,
        # and two cleanups at once would retry the job twice.
        if not queue.acquire_maintenance_lock():
            return
        try:
            registry.cleanup()
        finally:
            queue.release_maintenance_lock()  # type: ignore[no-untyped-call]  # RQ's is unannotated

    def wait(self, job_id: str, deadline: float) -> Outcome:
        """Wait until the job has a result or the deadline passes, woken by the result itself."""
        stream = Result.get_key(job_id)
        last_seen = "0-0"
        while (remaining := deadline - time.monotonic()) > 0:
            # Block in slices shorter than the socket timeout, which catches a Redis that hangs.
            block = min(remaining, WAIT_SLICE)
            response = cast(
                list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]],
                self.connection.xread({stream: last_seen}, block=max(1, int(block * 1000))),
            )
            if not response:
                continue
            for result_id, payload in response[0][1]:
                last_seen = result_id.decode()
                result = Result.restore(
                    job_id, last_seen, payload, connection=self.connection, serializer=self.serializer
                )
                outcome = self._outcome_of(job_id, result)
                if outcome is not None:
                    return outcome
        return self._unfinished(job_id)

    def _outcome_of(self, job_id: str, result: Result) -> Outcome | None:
        """The outcome a result stands for; None for a retried attempt, which another follows."""
        if result.type == Result.Type.SUCCESSFUL:
            return Outcome(DONE, variables=result.return_value or {}, job_id=job_id)
        if result.type == Result.Type.RETRIED:
            return None
        job = Job(job_id, connection=self.connection, serializer=self.serializer)
        reason = job.get_meta().get("error")
        if reason is None and any(sign in (result.exc_string or "") for sign in _PROCESS_GONE):
            reason = INTERRUPTED
            if self.settings.metrics:  # flowhook/jobfigures.py: its worker died, nobody else counts its end
                jobfigures.count_interrupted(self.connection, self.settings.queue_name, job_id)
        return Outcome(FAILED, error=str(reason or "the job failed in the worker"), job_id=job_id)

    def _unfinished(self, job_id: str) -> Outcome:
        """Outcome once the wait is over: pending with progress, or what became of the job."""
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=self.serializer)
        except NoSuchJobError:
            return Outcome(FAILED, error=UNKNOWN_JOB)
        status = job.get_status(refresh=False)
        if status.value in UNRESOLVED:
            progress = job.meta.get("progress")
            return Outcome(PENDING, job_id=job_id, progress=None if progress is None else str(progress))
        # It ended just as the wait timed out, or ended without a result (stopped, cancelled).
        result = job.latest_result()
        outcome = self._outcome_of(job_id, result) if result is not None else None
        return outcome or Outcome(
            FAILED, error=str(job.meta.get("error") or f"the job was {status.value}"), job_id=job_id
        )
