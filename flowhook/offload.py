"""Run a CPU-bound handler in a thread of its own, so that it cannot stall an event loop.

Under gevent (the web service and the ``pool`` workers) every call and job shares one thread: a
handler that computes for a second holds up everything else for that second, heartbeats aside.
A handler that says ``SETTINGS["cpu_bound"] = True`` runs in a native thread from gevent's pool
instead; the waiting greenlet stays interruptible (its budget or job timeout still answers on
time) and Python's GIL hands the loop the processor every few milliseconds. Without gevent
(threads, the tests, ``simple`` workers) it runs where it is called.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import TypeVar

from flowhook.call import Call

Result = TypeVar("Result")


def gevent_is_running() -> bool:
    """Whether gevent has patched this process's threads (gunicorn's gevent worker, a pool worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


def run_in_thread(function: Callable[[Call], Result], call: Call) -> Result:
    """Return ``function(call)``, run in a native thread when gevent runs this process.

    A greenlet interrupted while it waits (a timeout) tells the thread through ``call.stop()``:
    a thread cannot be interrupted, so the handler should look at ``call.stopped`` in long loops.
    """
    if not gevent_is_running():
        return function(call)
    import gevent  # noqa: PLC0415 - only where gevent runs, and it is imported already

    hub = gevent.get_hub()
    report = call.report_progress
    # Progress goes to Redis through connections the event loop owns: report it from there.
    call = dataclasses.replace(call, report_progress=lambda value: hub.loop.run_callback_threadsafe(report, value))
    try:
        result: Result = hub.threadpool.apply(function, (call,))
    except BaseException:
        call.stop()
        raise
    return result
