"""What the web service counts for Prometheus: its calls, their latency, its Redis errors.

prometheus-client in multiprocess mode under gunicorn (``flowhook.multiproc`` prepares the shared
directory), so that a scrape, whichever process answers it, reports every process's counts; without
gunicorn (tests, ``flask run``) the process's own. ``flowhook.monitoring`` serves them at
``/metrics`` with the workers' and the queues' figures. Label values are handler names (of the
handlers served), paths, outcomes and error kinds: never a variable value, conversation or job id.
"""

from __future__ import annotations

import os
import time
from contextvars import ContextVar
from typing import Any

from prometheus_client import Counter, Histogram, values
from redis import Redis
from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from flowhook.contract import INVALID, Envelope, Outcome, flow_value
from flowhook.multiproc import MULTIPROC_DIR
from flowhook.registry import WEB, Handler

# How a call was answered (the ``path`` label).
INLINE = "inline"  # a `web` handler ran in the web process (done, or handed to a worker: pending)
WORKER = "worker"  # a new job was started and waited for
ATTACH = "attach"  # an identical call's unresolved job was waited for
POLL = "poll"  # the call carried <h>_job
NONE = "none"  # nothing ran: the input was invalid
# Seconds: from a quick inline answer to LoyJoy's limit (budgets are at most 15 s).
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0)

# In multiprocess mode the client asks the process id on every increment, to notice a fork: a
# system call, three per call answered (a counter and a histogram's bucket and sum), which cost
# 12 µs per call where system calls are slow (a sandboxed machine). The id is kept instead, and
# renewed in a forked child.
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))
if os.environ.get(MULTIPROC_DIR):
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: _pid[0])  # type: ignore[no-untyped-call]

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

# Each label set's counter and histogram, by handler, path and outcome.
_counted: dict[tuple[str, str, str], tuple[Any, Any]] = {}

# Set while a call is answered when it attached to an identical call's job (JobStore.start).
_attached: ContextVar[bool] = ContextVar("flowhook_attached", default=False)


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
    key = (handler.name, path, outcome.status)
    counted = _counted.get(key)
    if counted is None:
        # The client's labels() checks and locks on every call: a child per label set, once, is cheaper.
        counted = _counted[key] = (CALLS.labels(*key), CALL_SECONDS.labels(handler.name, outcome.status))
    calls, seconds = counted
    calls.inc()
    seconds.observe(time.monotonic() - started)


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
