"""Start a command again when it dies: ``python -m flowhook.dev.respawn python -m workers``.

`make run` runs each worker under this, as `restart: unless-stopped` does in docker-compose.yml:
a handler that ends its worker's process (``os._exit``, a crash in C code, the OOM killer) costs
that job (answered "interrupted"), not the whole stack. A clean exit (0, the worker was told to
stop) or a configuration error (2) ends it; so does SIGTERM or SIGINT, passed on to the command.

SIGHUP (`make run`'s reload) starts the command again with the code and ``.env`` as saved now, once it
has finished what it runs: it is asked to stop with SIGTERM (an RQ worker finishes its running jobs;
queued jobs wait in Redis) and started again when it has.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from flowhook.dev import envfile

# Exit codes that mean "do not start again": stopped on request, or a configuration error.
FINAL = (0, 2)
# A command that dies this soon after starting, this many times in a row, is not started again.
TOO_SOON = 5.0
GIVE_UP_AFTER = 3
# make run's process manager kills what is left of a part 5 s after asking it to stop, and that
# reaches this process, not the command's own process group. Before then the command is asked again
# (a worker then interrupts its running jobs, and they are answered "interrupted") and, should it
# still be there, killed: no worker of an older version of the code is left running.
ASK_AGAIN_AFTER = 3.0
KILL_AFTER = 4.5


def main(argv: list[str] | None = None) -> int:
    """Run the command until it ends for good; returns its last exit code."""
    command = sys.argv[1:] if argv is None else argv
    if not command:
        print("usage: python -m flowhook.dev.respawn COMMAND [ARGS...]", file=sys.stderr)
        return 2
    stopping = False
    # The command is draining for a reload: started again when it ends, whatever its exit code.
    reloading = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        if child is None or child.poll() is not None:
            stopping = True
            return
        if not stopping:
            stopping = True
            running = child
            _later(ASK_AGAIN_AFTER, running, lambda: running.send_signal(signum))
            _later(KILL_AFTER, running, lambda: os.killpg(running.pid, signal.SIGKILL))
        child.send_signal(signum)

    def reload(_signum: int, _: FrameType | None) -> None:
        nonlocal reloading
        if stopping or reloading or child is None or child.poll() is not None:
            return  # asked once only: a second SIGTERM would make an RQ worker abandon its jobs
        reloading = True
        child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    quick_deaths = 0
    while True:
        started = time.monotonic()
        reloading = False
        # A process group of its own: the signal reaches it once, from here (a second SIGTERM
        # would make an RQ worker abandon its job rather than finish it). `.env` read anew each time.
        child = subprocess.Popen(command, process_group=0, env={**envfile.named_settings(os.environ), **os.environ})
        code = child.wait()
        # What the command left behind in its group dies with it: a dead RQ worker's scheduler
        # process would otherwise live on, holding the scheduler lock and `make run`'s output pipe.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        if stopping:
            return code
        if reloading:
            continue
        if code in FINAL:
            return code
        quick_deaths = quick_deaths + 1 if time.monotonic() - started < TOO_SOON else 0
        if quick_deaths >= GIVE_UP_AFTER:
            print(f"flowhook: {' '.join(command)} died {quick_deaths} times at start; not again", file=sys.stderr)
            return code
        print(f"flowhook: {' '.join(command)} died (exit {code}); starting it again", file=sys.stderr, flush=True)


def _later(delay: float, child: subprocess.Popen[bytes], deed: Callable[[], None]) -> None:
    """Do ``deed`` in ``delay`` seconds, if ``child`` is still running then."""

    def act() -> None:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                deed()

    timer = threading.Timer(delay, act)
    timer.daemon = True
    timer.start()


if __name__ == "__main__":
    sys.exit(main())
