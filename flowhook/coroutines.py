"""Run an ``async def handle``: every coroutine of a process on one asyncio event loop, in a thread of its own.

asyncio keeps its running loop per thread (in CPython's thread state), not per greenlet. Under
gevent every call and job of a process shares one thread, so a loop per call cannot work: a second
greenlet's ``asyncio.run()`` finds the first one's loop running and fails
(``tests/test_async_handlers.py`` shows it). Instead a process runs one loop, in a native thread
started at its first async call (again in a forked child), and every coroutine runs there as a task
beside the others. The call waits for its task where it is: a greenlet (the web under gunicorn's
gevent worker, a ``pool`` worker's job) yields to the other calls and jobs meanwhile, a thread (a
``simple`` or ``fork`` worker, a threaded server) blocks. Whatever interrupts the wait (the budget
of an inline attempt, the job timeout, a worker's cold stop) cancels the task: the coroutine gets
``asyncio.CancelledError`` at its current ``await``. The task runs in a copy of the caller's
context variables, so the job's trace id is in the lines its code logs.

Under gevent the loop's thread has gevent's patched modules too, and a hub of its own that waits
on the loop's behalf (gevent's selector): asyncio's sockets, DNS and ``asyncio.to_thread`` work.
"""

from __future__ import annotations

import _thread
import asyncio
import dataclasses
import os
import threading
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future, wait
from typing import Any

from flowhook.call import Call
from flowhook.offload import gevent_is_running

Result = Mapping[str, Any] | None
AsyncFunction = Callable[[Call], Coroutine[Any, Any, Result]]

# Seconds between two looks at ``call.stopped`` while a thread waits for its coroutine.
STOP_CHECK_INTERVAL = 0.1

_starting = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0  # the process that started _loop: a forked child starts its own


def run_coroutine(function: AsyncFunction, call: Call) -> Result:
    """Run ``function(call)`` on the process's event loop and return what it returned.

    Raises:
        BaseException: what the coroutine raised; or what interrupted the wait (the task is cancelled).
    """
    loop = _running_loop()
    if gevent_is_running():
        return _wait_in_greenlet(function, call, loop)
    return _wait_in_thread(function, call, loop)


def _wait_in_thread(function: AsyncFunction, call: Call, loop: asyncio.AbstractEventLoop) -> Result:
    """Wait for the task in a thread, which nothing interrupts but a signal: look at ``call.stopped`` too."""
    future = asyncio.run_coroutine_threadsafe(_contained(function(call)), loop)
    try:
        # An inline attempt under a threaded server is not interrupted at its budget, but told to stop.
        while not wait([future], timeout=STOP_CHECK_INTERVAL).done:
            if call.stopped:
                future.cancel()
        return future.result()
    except BaseException:
        future.cancel()  # a worker's timeout (SIGALRM) interrupted the wait
        raise


async def _contained(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """The coroutine, whose ``sys.exit()`` fails its call rather than end the loop every async handler shares."""
    try:
        return await coroutine
    except (SystemExit, KeyboardInterrupt) as error:
        raise RuntimeError(f"the handler raised {type(error).__name__}") from error


def _wait_in_greenlet(function: AsyncFunction, call: Call, loop: asyncio.AbstractEventLoop) -> Result:
    """Wait for the task without holding up the greenlets of this thread."""
    import gevent  # noqa: PLC0415 - only where gevent runs, and it is imported already
    from gevent.event import AsyncResult  # noqa: PLC0415

    hub = gevent.get_hub()
    report = call.report_progress
    # Progress goes to Redis through connections this thread's hub owns: report it from here.
    call = dataclasses.replace(call, report_progress=lambda value: hub.loop.run_callback_threadsafe(report, value))
    future = asyncio.run_coroutine_threadsafe(_contained(function(call)), loop)
    done = AsyncResult()
    future.add_done_callback(lambda finished: hub.loop.run_callback_threadsafe(done.set, finished))
    try:
        finished: Future[Result] = done.get()
        return finished.result()
    except BaseException:
        future.cancel()  # its budget, its job timeout or a cold stop: the coroutine stops at its await
        raise


def _running_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop, started in a native thread the first time."""
    global _loop, _loop_pid  # one loop per process, as gevent has one hub per thread
    with _starting:
        # A forked child has the loop object but not its thread; a thread that ended serves nobody.
        if _loop is None or _loop_pid != os.getpid() or not _loop.is_running():
            _loop, _loop_pid = _start_loop(), os.getpid()
        return _loop


def _start_loop() -> asyncio.AbstractEventLoop:
    """Create a loop in a new native thread (gevent's patched threads would be greenlets here)."""
    start_thread, allocate_lock = _thread.start_new_thread, _thread.allocate_lock
    if gevent_is_running():
        from gevent import monkey  # noqa: PLC0415

        start_thread, allocate_lock = monkey.get_original("_thread", ["start_new_thread", "allocate_lock"])
    created: list[asyncio.AbstractEventLoop] = []
    ready = allocate_lock()
    ready.acquire()

    def serve() -> None:
        # Made in its own thread, so that under gevent its sockets and selector belong to that thread's hub.
        loop = asyncio.new_event_loop()
        created.append(loop)
        loop.call_soon(ready.release)  # once it runs
        loop.run_forever()

    start_thread(serve, ())
    ready.acquire()  # a moment, once per process
    return created[0]
