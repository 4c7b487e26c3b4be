"""What Flowhook adds to every RQ worker class: a short job heartbeat, and patience with Redis."""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any

from redis.client import Pipeline
from redis.exceptions import RedisError
from rq.job import Job
from rq.queue import Queue
from rq.worker.base import BaseWorker

from flowhook import defaults
from flowhook.exceptions import HandlerError, RetryableError


class RoutineChores(logging.Filter):
    """Keeps RQ's line per registry clean-up (every 15 s per handler's queue, busy or not) to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Worker %s: cleaning registries"):
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


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
        # RQ's fork worker beats for its work horse at this interval; Flowhook's Heartbeat too.
        kwargs["job_monitoring_interval"] = max(1, heartbeat_ttl // 4)
        super().__init__(*args, **kwargs)

    def get_heartbeat_ttl(self, job: Job) -> int:
        """How long a job's registry entry lives without a heartbeat."""
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
                self.log.warning("Redis had forgotten worker %s: registering it again", self.name)
                self.connection.delete(self.key)  # the record the heartbeat just began
                self.register_birth()  # type: ignore[no-untyped-call]  # RQ's is unannotated
        except RedisError as error:
            self.log.warning("worker heartbeat missed: %s", error)

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance; tried again at the next chance when Redis is away."""
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]  # RQ's is unannotated
        except RedisError as error:
            self.log.warning("registry maintenance skipped: %s", error)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's suspension check; skipped when Redis is away."""
        try:
            super().check_for_suspension(burst)
        except RedisError as error:
            self.log.warning("suspension check skipped: %s", error)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        """RQ's wait for the next job, tried again every second while Redis is away."""
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except RedisError as error:
                self.log.warning("waiting for Redis: %s", error)
                time.sleep(1)

    def handle_exception(
        self, job: Job, kind: type[BaseException], error: BaseException, trace: TracebackType | None
    ) -> None:
        """RQ's traceback at ERROR, but for the failures a handler means: one line for those.

        A :class:`HandlerError` ("no such order") is an answer for the flow, not a fault of the
        service; its message is written for the flow, so it may be logged.
        """
        if isinstance(error, RetryableError):
            self.log.warning(
                "job %s (%s): %s: %s; tried again if it has retries left", job.id, job.description, kind.__name__, error
            )
        elif isinstance(error, HandlerError):
            self.log.info("job %s (%s): failed: %s: %s", job.id, job.description, kind.__name__, error)
        else:
            super().handle_exception(job, kind, error, trace)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run a job; if Redis fails while its outcome is written, the job is reaped as interrupted."""
        try:
            super().execute_job(job, queue)
        except RedisError as error:
            self.log.error("job %s: its outcome could not be written to Redis: %s", job.id, error)
