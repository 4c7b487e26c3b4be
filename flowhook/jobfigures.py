"""How the workers' jobs ended and how long they ran, kept in Redis for the web's ``/metrics``.

Workers keep no metrics endpoint of their own: each job's end adds to one Redis hash per
deployment (sent with the release of the job's dedupe entry: workers/job.py; a pool worker sends
its jobs' ends together, each second), and every web process exports the hash. So ``docker compose up --scale
worker=N`` needs no service discovery, and a worker that dies takes none of the counts with it.
The hash lives ``FIGURES_TTL`` after the last job ended; should it expire, Prometheus sees a
counter reset, which ``rate()`` handles.

A job whose worker died never reaches its own end: it is counted ``interrupted`` when its failure
is first read (by the flow's poll, or an attached call), once per job.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import RedisError
from rq.job import Job

from flowhook import keys

log = logging.getLogger(__name__)

# How a job ended: the label values of flowhook_jobs_total.
DONE = "done"
FAILED = "failed"
TIMED_OUT = "timed_out"
INTERRUPTED = "interrupted"
RETRIED = "retried"
ENDINGS = (DONE, FAILED, TIMED_OUT, INTERRUPTED, RETRIED)
# Upper bounds (seconds) of the run-time histogram's buckets: from a quick lookup to the job timeout.
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0)
# Seconds the hash is kept after the last job ended.
FIGURES_TTL = 7 * 24 * 3600
# Field of a job's own hash (which expires with the job) marking that its interruption was counted.
COUNTED_FIELD = "flowhook_interruption_counted"


def _bucket(seconds: float) -> str:
    """The bucket a run time falls in: the first upper bound it does not exceed, or +Inf."""
    for bound in RUN_BUCKETS:
        if seconds <= bound:
            return str(bound)
    return "+Inf"


@dataclass
class Tally:
    """Job ends counted in memory, then added to the hash in one write (a pool worker's, each second)."""

    fields: Counter[str] = field(default_factory=Counter)
    run_sums: dict[str, float] = field(default_factory=dict)  # seconds, by handler

    def add(self, handler: str, ended: str, seconds: float | None) -> None:
        """Count one job of ``handler`` that ended as ``ended`` after ``seconds`` of running (None: unknown)."""
        self.fields[f"ended:{handler}:{ended}"] += 1
        if seconds is not None:
            self.fields[f"run:{handler}:{_bucket(seconds)}"] += 1
            self.run_sums[handler] = self.run_sums.get(handler, 0.0) + seconds

    def merge(self, other: Tally) -> None:
        """Add another tally's counts to this one's (a write that failed, to be tried again)."""
        self.fields.update(other.fields)
        for handler, seconds in other.run_sums.items():
            self.run_sums[handler] = self.run_sums.get(handler, 0.0) + seconds

    def write(self, pipe: Pipeline, queue_name: str) -> None:
        """Add the counts to the deployment's hash; the commands go into ``pipe``, which the caller sends.

        Whether to count at all (``FLOWHOOK_METRICS``) is the caller's settings' to say.
        """
        if not self.fields:
            return
        key = keys.job_figures(queue_name)
        for name, count in self.fields.items():
            pipe.hincrby(key, name, count)
        for handler, seconds in self.run_sums.items():
            pipe.hincrbyfloat(key, f"run_sum:{handler}", seconds)
        pipe.expire(key, FIGURES_TTL)


def record_end(pipe: Pipeline, queue_name: str, handler: str, ended: str, seconds: float | None) -> None:
    """Count one job of ``handler`` that ended as ``ended`` after ``seconds`` of running (None: unknown).

    The commands go into ``pipe``, which the caller sends with its own. Whether to count at all
    (``FLOWHOOK_METRICS``) is the caller's settings' to say.
    """
    tally = Tally()
    tally.add(handler, ended, seconds)
    tally.write(pipe, queue_name)


# Mark the job counted and return its handler's name (its description, JobStore._create), only the
# first time and only while the job exists: a mark on an expired job would be a key without a TTL.
_MARK_COUNTED = """
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HSETNX', KEYS[1], ARGV[1], 1) == 1 then
    return redis.call('HGET', KEYS[1], 'description')
end
return false
"""


@functools.cache
def _mark_counted_script(connection: Redis) -> Script:
    return connection.register_script(_MARK_COUNTED)


def count_interrupted(connection: Redis, queue_name: str, job_id: str) -> None:
    """Count a job whose worker died as ``interrupted``, the first time its failure is read."""
    try:
        script = _mark_counted_script(connection)
        handler = cast(bytes | None, script(keys=[Job.key_for(job_id)], args=[COUNTED_FIELD]))
    except RedisError as error:
        # The call's answer does not wait on a figure: the job may go uncounted.
        log.warning("interrupted job %s not counted: %s", job_id, error)
        return
    if not handler:
        return
    try:
        with connection.pipeline(transaction=False) as pipe:
            record_end(pipe, queue_name, handler.decode(), INTERRUPTED, None)
            pipe.execute()
    except RedisError as error:
        log.warning("interrupted job %s not counted: %s", job_id, error)


@dataclass
class HandlerFigures:
    """One handler's job figures as the hash holds them."""

    ended: dict[str, int] = field(default_factory=dict)
    run_buckets: dict[str, int] = field(default_factory=dict)  # per bucket, not cumulative
    run_sum: float = 0.0


def read(connection: Redis, queue_name: str) -> dict[str, HandlerFigures]:
    """Every handler's job figures, by handler name."""
    figures: dict[str, HandlerFigures] = {}
    raw = cast(dict[bytes, bytes], connection.hgetall(keys.job_figures(queue_name)))
    for name, value in raw.items():
        kind, _, rest = name.decode().partition(":")
        handler, _, detail = rest.rpartition(":") if kind != "run_sum" else (rest, "", "")
        entry = figures.setdefault(handler, HandlerFigures())
        if kind == "ended":
            entry.ended[detail] = int(value)
        elif kind == "run":
            entry.run_buckets[detail] = int(value)
        elif kind == "run_sum":
            entry.run_sum = float(value)
    return figures
