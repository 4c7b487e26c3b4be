"""The worker classes that run one job at a time: ``simple`` and ``fork``."""

from __future__ import annotations

import functools

from redis import Redis
from rq import SimpleWorker as RQSimpleWorker
from rq import Worker as RQForkWorker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue

from workers.base import FlowhookWorker
from workers.heartbeat import Heartbeat
from workers.timeouts import SignalDeathPenalty


class SimpleWorker(FlowhookWorker, RQSimpleWorker):
    """Runs each job in the worker process, one at a time, timed by ``SIGALRM``."""

    death_penalty_class = SignalDeathPenalty

    @functools.cached_property
    def job_heartbeat(self) -> Heartbeat:
        # Its own client: a thread must not share the worker's connection mid-command.
        return Heartbeat(self, Redis(connection_pool=self.connection.connection_pool), self.heartbeat_ttl)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """RQ's ``perform_job``, with the job's heartbeat running until its outcome is written."""
        with self.job_heartbeat.running(job, execution):
            return super().perform_job(job, queue, execution)


class ForkWorker(FlowhookWorker, RQForkWorker):
    """Runs each job in a forked work horse, one at a time; the worker beats for it while it waits."""

    death_penalty_class = SignalDeathPenalty
