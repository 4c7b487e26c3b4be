"""Run a `web` handler's inline attempt with a deadline.

Under gunicorn's gevent worker (the default) the attempt runs in the call's own greenlet under a
``gevent.Timeout``: no hand-off, and an overrunning attempt is interrupted at its next wait for
I/O. Anywhere else (a threaded server, the tests) it runs in a thread pool and an overrunning
attempt goes on, told to stop through ``call.stopped``, while the call answers.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Protocol

from flowhook.call import Call
from flowhook.offload import gevent_is_running

Attempt = Callable[[Call], dict[str, str]]


class OverrunError(Exception):
    """The inline attempt did not finish within its time."""


class InlineRunner(Protocol):
    """Runs ``attempt(call)`` for at most ``timeout`` seconds."""

    def run(self, attempt: Attempt, call: Call, timeout: float) -> dict[str, str]:
        """Return the attempt's variables, or raise what it raised, or :class:`OverrunError`."""
        ...


class ThreadRunner:
    """Runs attempts in a thread pool, so that a call can stop waiting while its attempt goes on."""

    def __init__(self, size: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="inline")

    def run(self, attempt: Attempt, call: Call, timeout: float) -> dict[str, str]:
        future = self.pool.submit(attempt, call)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            raise OverrunError from None


class GeventRunner:
    """Runs attempts in the calling greenlet, interrupted at the deadline by a ``gevent.Timeout``."""

    def run(self, attempt: Attempt, call: Call, timeout: float) -> dict[str, str]:
        import gevent  # noqa: PLC0415 - only under gunicorn's gevent worker, which imported it

        # A gevent.Timeout is a BaseException: a handler's own `except Exception` does not swallow it.
        deadline = gevent.Timeout(timeout)
        deadline.start()
        try:
            return attempt(call)
        except gevent.Timeout as raised:
            if raised is not deadline:
                raise
            raise OverrunError from None
        finally:
            deadline.close()


def runner_for_this_process(size: int) -> InlineRunner:
    """The gevent runner when gevent has patched this process's threads, else a thread pool."""
    return GeventRunner() if gevent_is_running() else ThreadRunner(size)
