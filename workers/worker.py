"""RQ's workers, with a heartbeat short enough that a dead worker's job is answered within a minute.

RQ marks a job abandoned when its entry in the started-job registry expires, and a simple
worker (which runs the job in its own process) renews that entry only between jobs: its TTL
has to be the job's whole timeout plus a minute. Here a thread renews it every
quarter of ``FLOWHOOK_HEARTBEAT_TTL`` while the job runs, so the TTL can be that setting: a
killed worker's job expires that long after its last heartbeat, and RQ's own registry
cleanup (run by any worker's maintenance, or by the web app when the flow polls) answers it
``failed`` or runs it again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.queue import Queue
from rq.worker.base import BaseWorker

from flowhook import defaults

log = logging.getLogger(__name__)


class Heartbeat:
    """A thread of the worker's own that renews the running job's registry entry.

    One thread for the worker's life: starting one per job would cost more than a short job
    takes. A job stuck past its timeout (the timeout signal cannot interrupt a call stuck in C
    code) gets no more heartbeats, so it is reaped as abandoned like a dead worker's.

    Args:
        worker: The worker whose jobs it beats for.
    """

    def __init__(self, worker: FlowhookSimpleWorker) -> None:
        self.worker = worker
        # Held while beating, so that no beat for a job goes out once ``running`` has returned.
        self.lock = threading.Lock()
        self.job: Job | None = None
        self.give_up_at = 0.0
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    @contextlib.contextmanager
    def running(self, job: Job) -> Iterator[None]:
        """Beat for ``job`` while the block runs."""
        with self.lock:
            self.job = job
            self.give_up_at = time.monotonic() + (job.timeout or defaults.JOB_TIMEOUT) + self.worker.heartbeat_ttl
        try:
            yield
        finally:
            with self.lock:
                self.job = None

    def _beat(self) -> None:
        while True:
            time.sleep(self.worker.job_monitoring_interval)
            with self.lock:
                if self.job is None:
                    continue
                if time.monotonic() > self.give_up_at:
                    log.error("job %s overstayed its timeout; no more heartbeats, it will be reaped", self.job.id)
                    self.job = None
                    continue
                try:
                    self.worker.maintain_heartbeats(self.job)
                except RedisError as error:
                    # The entry outlives a few missed beats: Redis may be back before it expires.
                    log.warning("heartbeat for job %s missed: %s", self.job.id, error)


class FlowhookWorker(BaseWorker):
    """What Flowhook adds to RQ's workers: a short job heartbeat, and patience when Redis is away.

    Args:
        heartbeat_ttl: How long a running job's registry entry lives without a heartbeat; it is
            renewed every quarter of that.
    """

    # RQ doubles its wait between attempts to reach Redis (1, 2, 4, ... 60 s): a worker would stay
    # idle for as long as Redis had been away. Trying every second costs one connection attempt.
    exponential_backoff_factor = 1.0

    def __init__(self, *args: Any, heartbeat_ttl: int = defaults.HEARTBEAT_TTL, **kwargs: Any) -> None:
        self.heartbeat_ttl = heartbeat_ttl
        # RQ's fork worker beats for its work horse at this interval; the simple worker's
        # Heartbeat thread uses the same.
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

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run a job; if Redis fails while its outcome is written, the job is reaped as interrupted."""
        try:
            super().execute_job(job, queue)
        except RedisError as error:
            self.log.error("job %s: its outcome could not be written to Redis: %s", job.id, error)


class FlowhookSimpleWorker(FlowhookWorker, SimpleWorker):
    """Runs each job in the worker process, with a heartbeat thread beside it."""

    @functools.cached_property
    def job_heartbeat(self) -> Heartbeat:
        return Heartbeat(self)

    def perform_job(self, job: Job, queue: Queue) -> bool:
        """RQ's ``perform_job``, with the job's heartbeat running until its outcome is written."""
        with self.job_heartbeat.running(job):
            return bool(super().perform_job(job, queue))


class FlowhookForkWorker(FlowhookWorker, Worker):
    """Runs each job in a forked work horse; the worker beats for it while it waits."""
