"""The heartbeat of every job a worker runs, from a native thread of the worker's own.

RQ marks a job abandoned when its entry in the started-job registry expires, and its simple worker
renews that entry only between jobs: the entry has to live the job's whole timeout plus a minute.
Here one thread renews the entry of every running job every ``interval`` seconds, so the entry
can live just ``FLOWHOOK_HEARTBEAT_TTL``: a killed worker's jobs expire that long after their last
beat, and RQ's own registry cleanup (any worker's maintenance, or the web app when the flow polls)
answers them ``failed`` "interrupted", or runs them again.

It is a native thread even where gevent has patched ``threading``: a handler that holds the
event loop (computing, or stuck in C code) cannot delay its neighbours' beats, because the GIL
gives this thread the processor every few milliseconds. It knows nothing of how jobs run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from gevent import monkey
from redis import Redis
from redis.exceptions import RedisError
from rq.executions import Execution
from rq.job import Job

from flowhook import defaults
from workers.base import FlowhookWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Beat:
    """One running job, and the moment past which it gets no more beats."""

    job: Job
    execution: Execution
    give_up_at: float


class Heartbeat:
    """Renews the started-registry entry of every job running in a worker.

    One thread for the worker's life: starting one per job would cost more than a short job takes.
    A job stuck past its timeout (a timeout cannot interrupt a call stuck in C code, nor a pool
    worker's greenlet that never waits) gets no more beats, so it is reaped like a dead worker's.

    Args:
        worker: The worker whose jobs it beats for; its own record is renewed with them.
        connection: A Redis client for this thread alone.
        ttl: How long an entry lives without a beat.
    """

    def __init__(self, worker: FlowhookWorker, connection: Redis, ttl: int) -> None:
        self.worker = worker
        self.connection = connection
        self.ttl = ttl
        self.interval = max(1.0, ttl / 4)
        # Written by the jobs, read by the thread; single dict operations are atomic under the GIL.
        self.beats: dict[str, Beat] = {}
        # The original functions: under gevent, time.sleep and Thread would make a greenlet of it.
        self._sleep = monkey.get_original("time", "sleep")
        self.stopped = False
        monkey.get_original("_thread", "start_new_thread")(self._run, ())

    @contextlib.contextmanager
    def running(self, job: Job, execution: Execution) -> Iterator[None]:
        """Beat for ``job``'s execution while the block runs."""
        timeout = job.timeout if job.timeout and job.timeout > 0 else defaults.JOB_TIMEOUT
        self.beats[execution.id] = Beat(job, execution, time.monotonic() + timeout + self.ttl)
        try:
            yield
        finally:
            self.beats.pop(execution.id, None)

    def stop(self) -> None:
        """End the thread after its current beat (a worker's work() is over)."""
        self.stopped = True

    def _run(self) -> None:
        while not self.stopped:
            self._sleep(self.interval)
            try:
                beat_any = self.beat()
            except RedisError as error:
                # An entry outlives a few missed beats: Redis may be back before it expires.
                self.worker.outage.lost(error)
            except Exception:
                log.exception("heartbeat failed")  # a bug; the next beat tries again
            else:
                if beat_any:
                    self.worker.outage.back()

    def beat(self) -> bool:
        """Renew every running job's entry, and the worker's own record, in one round trip.

        Returns:
            Whether there was any to renew (and Redis was asked).
        """
        alive = []
        now = time.monotonic()
        for key, beat in list(self.beats.items()):
            if now > beat.give_up_at:
                log.error("job %s overstayed its timeout; no more heartbeats, it will be reaped", beat.job.id)
                self.beats.pop(key, None)
            else:
                alive.append(beat)
        if not alive:
            return False
        with self.connection.pipeline(transaction=False) as pipe:
            self.worker.heartbeat(self.worker.worker_ttl + 60, pipeline=pipe)
            for beat in alive:
                beat.execution.heartbeat(beat.job.started_job_registry, self.ttl, pipeline=pipe)
            pipe.execute()
        return True
