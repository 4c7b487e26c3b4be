"""RQ's scheduler, run in a fresh interpreter of its own instead of a fork of the worker.

RQ forks its scheduler from the worker. A fork of a ``pool`` worker takes the worker's greenlets
along, and gevent runs them in the child whenever the scheduler sleeps: a scheduler started again
after a Redis outage took jobs from the queues itself (jobs no heartbeat covered, stopped with the
scheduler), and the worker's command listener read from the socket it shares with its parent.
Started as ``python -m workers.scheduler``, the scheduler process holds the scheduler alone.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import subprocess
import sys

from redis.exceptions import RedisError
from rq.scheduler import RQScheduler, run
from rq.serializers import JSONSerializer

from flowhook import logs
from flowhook.connection import connect
from flowhook.settings import Settings

# prctl(2): the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


class SchedulerOutage(logging.Filter):
    """Turns the traceback RQ's scheduler logs when it loses Redis into one line: it is started again."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            isinstance(record.msg, str)
            and record.msg.startswith("Scheduler [PID %s] raised an exception")
            and "redis.exceptions." in str(record.args[-1] if isinstance(record.args, tuple) else "")
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "Scheduler [PID %s] lost Redis; the worker starts it again once Redis is back"
            record.args = record.args[:1] if isinstance(record.args, tuple) else ()
        return True


class SchedulerProcess:
    """The part of ``multiprocessing.Process`` RQ's worker uses to watch and stop its scheduler.

    Args:
        popen: The running ``python -m workers.scheduler``.
    """

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen

    @property
    def pid(self) -> int:
        """The scheduler's process id; 0 once it has ended (RQ then sends it no signal: the id may be reused)."""
        return self.popen.pid if self.popen.returncode is None else 0

    def is_alive(self) -> bool:
        """Whether the scheduler still runs (it ends when it loses Redis; the worker starts another)."""
        return self.popen.poll() is None

    def join(self) -> None:
        """Wait until the scheduler has stopped."""
        self.popen.wait()


class SeparateScheduler(RQScheduler):
    """RQ's scheduler, as the worker sees it: it takes the locks, then starts the scheduling process."""

    def start(self) -> SchedulerProcess:
        """Start ``python -m workers.scheduler`` under this scheduler's name, which holds the locks."""
        self._status = self.Status.STARTED
        command = [sys.executable, "-m", "workers.scheduler", f"--worker={os.getpid()}", f"--name={self.name}"]
        command.extend(["--", *sorted(self._queue_names)])
        process = SchedulerProcess(subprocess.Popen(command))
        self._process = process  # type: ignore[assignment]  # RQ's is a Process; this has what RQ uses
        return process


def main(argv: list[str] | None = None) -> int:
    """Schedule the named queues' jobs until SIGTERM; exit 1 when Redis is lost."""
    parser = argparse.ArgumentParser(prog="python -m workers.scheduler", description=__doc__)
    parser.add_argument("--worker", type=int, required=True, help="the process id of the worker it serves")
    parser.add_argument("--name", required=True, help="the name the worker took the scheduler locks under")
    parser.add_argument("queues", nargs="+", help="the queues whose scheduled jobs it enqueues")
    args = parser.parse_args(argv)
    stop_with_worker(args.worker)
    settings = Settings.from_env()
    logs.configure(settings)
    logging.getLogger("rq.scheduler").addFilter(SchedulerOutage())
    scheduler = RQScheduler(
        args.queues,
        connection=connect(settings),
        logging_level=settings.log_level,
        serializer=JSONSerializer,
        name=args.name,
    )
    try:
        run(scheduler)
    except RedisError:
        return 1  # RQ's run logged it (one line, through SchedulerOutage); the worker starts another
    return 0


def stop_with_worker(worker: int) -> None:
    """Have Linux send SIGTERM when the worker dies (killed, say): an orphan would keep the locks."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != worker:  # it died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
