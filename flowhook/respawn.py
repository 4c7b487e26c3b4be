"""Start a command again when it dies: ``python -m flowhook.respawn python -m workers``.

`make run` runs each worker under this, as `restart: unless-stopped` does in docker-compose.yml:
a handler that ends its worker's process (``os._exit``, a crash in C code, the OOM killer) costs
that job (answered "interrupted"), not the whole stack. A clean exit (0, the worker was told to
stop) or a configuration error (2) ends it; so does SIGTERM or SIGINT, passed on to the command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType

# Exit codes that mean "do not start again": stopped on request, or a configuration error.
FINAL = (0, 2)
# A command that dies this soon after starting, this many times in a row, is not started again.
TOO_SOON = 5.0
GIVE_UP_AFTER = 3


def main(argv: list[str] | None = None) -> int:
    """Run the command until it ends for good; returns its last exit code."""
    command = sys.argv[1:] if argv is None else argv
    if not command:
        print("usage: python -m flowhook.respawn COMMAND [ARGS...]", file=sys.stderr)
        return 2
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    quick_deaths = 0
    while True:
        started = time.monotonic()
        # A process group of its own: the signal reaches it once, from here (a second SIGTERM
        # would make an RQ worker abandon its job rather than finish it).
        child = subprocess.Popen(command, process_group=0)
        code = child.wait()
        # What the command left behind in its group dies with it: a dead RQ worker's scheduler
        # process would otherwise live on, holding the scheduler lock and `make run`'s output pipe.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        if stopping or code in FINAL:
            return code
        quick_deaths = quick_deaths + 1 if time.monotonic() - started < TOO_SOON else 0
        if quick_deaths >= GIVE_UP_AFTER:
            print(f"flowhook: {' '.join(command)} died {quick_deaths} times at start; not again", file=sys.stderr)
            return code
        print(f"flowhook: {' '.join(command)} died (exit {code}); starting it again", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
