"""What Flowhook adds to every RQ worker class: a short job heartbeat, and patience with Redis.

A worker never quits over Redis. While Redis is away it tries again every second, logs the outage
once (and its end once), and holds a finished job's outcome until it can write it: a handler that
finished is answered with what it returned, not "interrupted", and is not run again.

Flowhook's own lines go to the ``flowhook.worker`` logger. RQ's loggers (``rq.worker``, ``rq.job``)
log at WARNING unless ``FLOWHOOK_LOG_LEVEL=DEBUG``: their INFO lines (two per job, one per queue's
registry clean-up every 15 s) repeat what Flowhook's line per job says.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from redis.client import Pipeline, PubSub, PubSubWorkerThread
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from rq import worker_registration
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.executions import Execution
from rq.job import Job, Retry
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.utils import now
from rq.worker.base import BaseWorker

from flowhook import defaults
from flowhook.exceptions import HandlerError, JobEnded, RetryableError
from flowhook.outage import Outage

log = logging.getLogger("flowhook.worker")


class FlowhookWorker(BaseWorker):
    """RQ's worker with a job heartbeat of ``heartbeat_ttl`` and no fatal Redis errors.

    Args:
        heartbeat_ttl: How long a running job's registry entry lives without a heartbeat; it is
            renewed every quarter of that.
    """

    # A line per job about how long its result is kept says nothing the settings do not.
    log_result_lifespan = False
    # RQ doubles its wait between attempts to reach Redis (1, 2, 4, ... 60 s): a worker would stay
    # idle for as long as Redis had been away. Trying every second costs one connection attempt.
    exponential_backoff_factor = 1.0

    def __init__(self, *args: Any, heartbeat_ttl: int = defaults.HEARTBEAT_TTL, **kwargs: Any) -> None:
        self.heartbeat_ttl = heartbeat_ttl
        self.outage = Outage(log)
        # Jobs an operator stopped that are still ending: RQ records them as stopped, not failed.
        self.stopped_jobs: set[str] = set()
        # RQ's fork worker beats for its work horse at this interval; Flowhook's Heartbeat too.
        kwargs["job_monitoring_interval"] = max(1, heartbeat_ttl // 4)
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        """How long one wait for a job blocks: short, so that a worker never waits long on a silent Redis."""
        return defaults.DEQUEUE_BLOCK

    @property
    def connection_timeout(self) -> int:
        """The shortest read timeout RQ lets the worker's connection keep: its wait for a job and a reply.

        RQ lengthens a shorter one (and sets one where there is none) to outlast its wait for a job,
        15 s by default; a one-at-a-time worker waits ``DEQUEUE_BLOCK`` (1 s) at a time, so that a
        Redis that hangs is noticed in seconds (flowhook/connection.py opens it so).
        """
        return math.ceil(defaults.DEQUEUE_BLOCK + defaults.REDIS_TIMEOUT)

    def bootstrap(
        self,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's start (registration, the command channel), then Flowhook's line that the worker is ready."""
        super().bootstrap(logging_level, date_format, log_format)
        log.info("Worker %s: listening on %s", self.name, ", ".join(self.queue_names()))

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long a job's registry entry lives without a heartbeat: beats come every quarter of it."""
        return self.heartbeat_ttl

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """The worker's own heartbeat; a missed one is logged, not fatal.

        It also signs the worker in again if Redis lost its record (restarted without its data,
        or away past the worker's TTL): else a live worker is missing from ``/readyz`` and
        ``--check``. Pipelined, this costs no more round trips than RQ's heartbeat alone.
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        try:
            with self.connection.pipeline(transaction=False) as beat:
                beat.hexists(self.key, "birth")
                super().heartbeat(timeout, beat)
                registered = beat.execute()[0]
            if not registered:
                log.warning("Redis had forgotten worker %s: registering it again", self.name)
                self.register_again()
        except RedisError as error:
            self.outage.lost(error)
        else:
            if self.outage.since is not None:
                # A reply lost in the outage may have left a job taken but unstarted: look soon.
                self.last_cleaned_at = None
            self.outage.back()

    def register_again(self) -> None:
        """Write the worker's record and queue memberships anew, whatever record is there now.

        RQ's ``register_birth`` refuses while a record without ``death`` exists, and one always
        does here: this heartbeat began it, and the job heartbeat thread renews it at any moment.
        Its writes, without that check, in one transaction.
        """
        with self.connection.pipeline() as pipe:
            pipe.delete(self.key)
            self.birth_date = self.last_heartbeat = now()
            pipe.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()

    def _pubsub_exception_handler(self, exc: Exception, pubsub: PubSub, pubsub_thread: PubSubWorkerThread) -> None:
        """RQ's, but a lost connection is part of the outage the worker logs once, not an ERROR each 2 s."""
        if not isinstance(exc, RedisConnectionError):
            super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)
            return
        self.outage.lost(exc)
        time.sleep(1.0)  # redis-py subscribes again once it reconnects

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance; tried again at the next chance when Redis is away."""
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]  # RQ's is unannotated
        except RedisError as error:
            self.outage.lost(error)  # tried again at the next chance

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's suspension check; skipped when Redis is away."""
        try:
            super().check_for_suspension(burst)
        except RedisError as error:
            self.outage.lost(error)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        """RQ's wait for the next job, tried again every second while Redis is away."""
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except RedisError as error:
                self.outage.lost(error)
                time.sleep(1)

    def handle_exception(
        self, job: Job, kind: type[BaseException], error: BaseException, trace: TracebackType | None
    ) -> None:
        """RQ's traceback at ERROR, but for the failures a handler means: one line for those.

        A :class:`HandlerError` ("no such order") is an answer for the flow, not a fault of the
        service; its message is written for the flow, so it may be logged.
        """
        if isinstance(error, RetryableError):
            log.warning(
                "job %s (%s): %s: %s; tried again if it has retries left", job.id, job.description, kind.__name__, error
            )
        elif isinstance(error, HandlerError):
            log.info("job %s (%s): failed: %s: %s", job.id, job.description, kind.__name__, error)
        elif isinstance(error, JobEnded):
            log.warning("job %s (%s): ended early: %s: %s", job.id, job.description, kind.__name__, error)
        else:
            super().handle_exception(job, kind, error, trace)

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """RQ's note that the job ended, held while Redis is away (else RQ would fail a finished job)."""
        note = super().handle_execution_ended
        self.hold(lambda: note(job, queue, heartbeat_ttl))

    def handle_job_success(
        self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry, execution: Execution
    ) -> None:
        """RQ's writing of a job's result, held while Redis is away."""
        write = super().handle_job_success
        self.hold(lambda: write(job, queue, started_job_registry, execution))

    def handle_job_retry(
        self, job: Job, queue: Queue, retry: Retry, started_job_registry: StartedJobRegistry, execution: Execution
    ) -> None:
        """RQ's scheduling of a job's next attempt, held while Redis is away."""
        schedule = super().handle_job_retry
        self.hold(lambda: schedule(job, queue, retry, started_job_registry, execution))

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: StartedJobRegistry | None = None,
        exc_string: str = "",
        execution: Execution | None = None,
    ) -> None:
        """RQ's writing of a job's failure, once Redis answers (RQ's own logs and drops a failed write).

        A job an operator stopped is recorded as RQ records one: ``stopped``, not ``failed``.
        """
        with contextlib.suppress(RedisError):  # past the hold, RQ's own try is all there is
            self.hold(self.connection.ping)
        if job.id in self.stopped_jobs:
            self.stopped_jobs.discard(job.id)
            # Read by RQ's handle_job_failure below, with no switch to another job in between.
            self._stopped_job_id = job.id
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)

    def hold(self, write: Callable[[], object]) -> None:
        """Write, and while Redis is away try again, up to the job heartbeat's TTL.

        Past that the job's registry entry has expired, and it is answered "interrupted" anyway.

        Raises:
            RedisError: when Redis was away the whole time.
        """
        self.outage.retry(write, time.monotonic() + self.heartbeat_ttl)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run a job; if Redis stays away while its outcome is held, the job is reaped as interrupted."""
        try:
            super().execute_job(job, queue)
        except RedisError as error:
            log.error("job %s: Redis stayed away; its outcome is lost and it will be reaped: %s", job.id, error)
