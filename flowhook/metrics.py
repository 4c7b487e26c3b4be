"""What the web service counts for Prometheus: its calls, their latency, its Redis errors.

prometheus-client in multiprocess mode under gunicorn (``flowhook.multiproc`` prepares the shared
directory), so that a scrape, whichever process answers it, reports every process's counts; without
gunicorn (tests, ``flask run``) the process's own. ``flowhook.monitoring`` serves them at
``/metrics`` with the workers' and the queues' figures. Label values are handler names (of the
handlers served), paths, outcomes and error kinds: never a variable value, conversation or job id.

Calls are counted in memory and added to the client's metrics together: before each scrape the
process answers, and in multiprocess mode every second too (so a call shows in another process's
scrape within a second), and when the process exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from bisect import bisect_left
from contextvars import ContextVar
from typing import Any

from prometheus_client import Counter, Histogram
from redis import Redis
from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from flowhook.contract import INVALID, Envelope, Outcome, flow_value
from flowhook.multiproc import shared_directory
from flowhook.registry import WEB, Handler

log = logging.getLogger(__name__)

# How a call was answered (the ``path`` label).
INLINE = "inline"  # a `web` handler ran in the web process (done, or handed to a worker: pending)
WORKER = "worker"  # a new job was started and waited for
ATTACH = "attach"  # an identical call's unresolved job was waited for
POLL = "poll"  # the call carried <h>_job
NONE = "none"  # nothing ran: the input was invalid
# Seconds: from a quick inline answer to LoyJoy's limit (budgets are at most 15 s).
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0)
# Seconds between two writes of the calls counted in memory, in multiprocess mode: as the workers
# write their job figures (flowhook.jobfigures); Prometheus scrapes every 15 s.
WRITE_EVERY = 1.0

CALLS = Counter(
    "flowhook_calls", "WebService calls answered, by handler, path and outcome.", ["handler", "path", "outcome"]
)
CALL_SECONDS = Histogram(
    "flowhook_call_duration_seconds",
    "Seconds from a call's arrival to its answer, by handler and outcome.",
    ["handler", "outcome"],
    buckets=CALL_BUCKETS,
)
REDIS_ERRORS = Counter(
    "flowhook_redis_errors", "Redis commands of the web service that failed, by kind of error.", ["kind"]
)
PENDING_WHILE_AWAY = Counter(
    "flowhook_pending_redis_away",
    "Calls answered pending because Redis could not be reached within their wait (new calls with no job, "
    "polls with their job), by handler.",
    ["handler"],
)

# Set while a call is answered when it attached to an identical call's job (JobStore.start).
_attached: ContextVar[bool] = ContextVar("flowhook_attached", default=False)


class CallCounts:
    """One label set's calls since the counts were last written: how many, their seconds, per bucket."""

    __slots__ = ("buckets", "calls", "seconds")

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(CALL_BUCKETS) + 1)  # the last one is +Inf

    def add(self, seconds: float) -> None:
        """Count one call that took ``seconds``."""
        self.calls += 1
        self.seconds += seconds
        # The client's rule: the first bucket whose upper bound the value does not exceed.
        self.buckets[bisect_left(CALL_BUCKETS, seconds)] += 1


def add_observations(histogram: Histogram, counts: CallCounts) -> None:
    """Add ``counts`` to a labelled child of a histogram with ``CALL_BUCKETS``, as one observe() per call would.

    The client has no public way to add many observations at once: this adds to the child's sum
    and its (not cumulative) buckets, which tests/test_metrics.py pins against observe().
    """
    histogram._sum.inc(counts.seconds)
    for bucket, calls in zip(histogram._buckets, counts.buckets, strict=True):
        if calls:
            bucket.inc(calls)


class CallTally:
    """The calls answered, counted in memory and added to ``CALLS`` and ``CALL_SECONDS`` together.

    Counting a call so costs a dictionary lookup and three additions. The client's own counting is
    three increments of memory-mapped values in multiprocess mode, each through a lock and several
    calls: under gunicorn, with its caches cold between calls, some 25 µs of CPU per call, 7 % of
    an inline echo (docs/benchmarks.md, scenario 8).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], CallCounts] = {}
        # Each label set's counter and histogram: labels() checks and locks on every call.
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._writer: threading.Thread | None = None
        # Decided once, as prometheus_client decides where its values live: when it is imported.
        self._shared = shared_directory() is not None

    def add(self, key: tuple[str, str, str], seconds: float) -> None:
        """Count one call of the label set ``key`` (handler, path, outcome) that took ``seconds``."""
        with self._lock:
            counts = self._pending.get(key)
            if counts is None:
                counts = self._pending[key] = CallCounts()
            counts.add(seconds)
        if self._writer is None and self._shared:
            self._start_writer()

    def write(self) -> None:
        """Add the calls counted since the last write to the client's metrics."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for key, counts in pending.items():
            children = self._children.get(key)
            if children is None:
                handler, _, outcome = key
                children = self._children[key] = (CALLS.labels(*key), CALL_SECONDS.labels(handler, outcome))
            calls, seconds = children
            calls.inc(counts.calls)
            add_observations(seconds, counts)

    def forget(self) -> None:
        """In a forked child: the parent's counts are the parent's to write, and its writer stayed there."""
        self._lock = threading.Lock()
        self._pending = {}
        self._writer = None

    def _start_writer(self) -> None:
        """In multiprocess mode other processes' scrapes read this one's counts: write them every second."""
        self._writer = threading.Thread(target=self._write_every_second, name="flowhook-metrics", daemon=True)
        self._writer.start()
        atexit.register(self.write)  # the last second's calls of a process that stops

    def _write_every_second(self) -> None:
        while True:
            time.sleep(WRITE_EVERY)
            try:
                self.write()
            except Exception:  # the next second tries again; a scrape must not stop seeing calls
                log.exception("could not write the calls counted for /metrics")


_tally = CallTally()
os.register_at_fork(after_in_child=_tally.forget)


def note_attached() -> None:
    """Say that the call being answered attached to a job already running."""
    _attached.set(True)


def note_pending_while_away(handler: Handler) -> None:
    """Count a call answered pending because Redis was away: the flow's loop carries it over the outage."""
    PENDING_WHILE_AWAY.labels(handler.name).inc()


def new_call() -> None:
    """A request starts with no path noted (a keep-alive connection serves several in one greenlet)."""
    _attached.set(False)


def observe_call(handler: Handler, envelope: Envelope, outcome: Outcome, started: float) -> None:
    """Count one answered call and its latency (from ``started``, monotonic)."""
    if flow_value(envelope.variables.get(handler.job_variable)):
        path = POLL
    elif outcome.status == INVALID:
        path = NONE
    elif handler.settings.runs_in == WEB:
        path = INLINE
    else:
        path = ATTACH if _attached.get() else WORKER
    _tally.add((handler.name, path, outcome.status), time.monotonic() - started)


def write_counted_calls() -> None:
    """Bring ``CALLS`` and ``CALL_SECONDS`` up to date with this process's calls (before a scrape)."""
    _tally.write()


def _error_kind(error: RedisError) -> str | None:
    """The kind of a failure of Redis itself; None for an error answer that is part of a protocol.

    Such answers come every day: an unknown command redis-py tries on connecting (CLIENT SETINFO on
    an older Redis), a script not yet cached (NOSCRIPT). Out of memory (``noeviction`` refusing
    writes) and read-only (a replica, after a failover) are failures of Redis, and counted.
    """
    if isinstance(error, RedisTimeoutError):
        return "timeout"
    if isinstance(error, RedisConnectionError):
        return "connection"
    if isinstance(error, OutOfMemoryError):
        return "out_of_memory"
    if isinstance(error, ReadOnlyError):
        return "read_only"
    return None


def _count(error: RedisError) -> None:
    kind = _error_kind(error)
    if kind is not None:
        REDIS_ERRORS.labels(kind).inc()


def count_redis_errors(connection: Redis) -> None:
    """Count every failed command of ``connection``'s pool in ``flowhook_redis_errors_total``.

    At the connection, not where calls catch errors, so that errors a call retries are counted too.
    """
    pool = connection.connection_pool
    base: type[AbstractConnection] = pool.connection_class

    class CountingConnection(base):  # type: ignore[valid-type,misc]  # a subclass of the pool's own class
        def connect(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().connect(*args, **kwargs)
            except RedisError as error:
                _count(error)
                raise

        def send_packed_command(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().send_packed_command(*args, **kwargs)
            except RedisError as error:
                _count(error)
                raise

        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().read_response(*args, **kwargs)
            except RedisError as error:
                _count(error)
                raise

    CountingConnection.__name__ = f"Counting{base.__name__}"
    pool.connection_class = CountingConnection
