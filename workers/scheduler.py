"""RQ's scheduler in a process of its own: ``python -m workers.scheduler``.

RQ forks its scheduler from the worker. A fork of a ``pool`` worker takes the worker's greenlets
along, and gevent runs them in the child whenever the scheduler sleeps: a scheduler started again
after a Redis outage took jobs from the queues itself. So ``python -m workers`` starts this module
beside itself instead (``--with-scheduler`` is not used), and it ends with its worker.

It runs RQ's scheduler through RQ's public methods: it takes the queues' scheduler locks when they
are free (every worker has a scheduler process; one holds the locks, the others stand by and take
over within ``defaults.MAINTENANCE_INTERVAL`` seconds once the holder released them as it stopped,
or once they expired, a minute after a killed holder's last heartbeat), moves due jobs (retries
with a pause) to their queues every second, and rides out Redis outages.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
import time

from redis import Redis
from redis.exceptions import RedisError
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from flowhook import defaults, logs
from flowhook.connection import connect
from flowhook.settings import Settings

# prctl(2): the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1

log = logging.getLogger("flowhook.scheduler")


class Scheduler:
    """RQ's scheduler for ``queues``, driven by Flowhook's loop.

    Args:
        queues: The names of the queues whose scheduled jobs it enqueues.
        connection: Where they are.
    """

    def __init__(self, queues: list[str], connection: Redis) -> None:
        self.rq = RQScheduler(queues, connection=connection, serializer=JSONSerializer, logging_level=logging.WARNING)
        self.queues = set(queues)
        # A plain flag: set from a signal handler, which must not take a lock the loop may hold.
        self.stopping = False
        self._locks_tried_at = -float("inf")

    def run(self) -> None:
        """Schedule until :meth:`stop`, then release the locks."""
        while not self.stopping:
            try:
                self.tick()
            except RedisError as error:
                # Its worker logs the outage, once; the scheduler tries again at its next tick.
                log.debug("scheduler: Redis unavailable: %s", error)
            time.sleep(self.rq.interval)
        try:
            self.rq.release_locks()
            self.rq.register_death()
        except RedisError as error:
            log.warning("scheduler locks left to expire: %s", error)

    def tick(self) -> None:
        """Take the free locks now and then, and enqueue the due jobs of the queues it holds."""
        lock_due = time.monotonic() - self._locks_tried_at > defaults.MAINTENANCE_INTERVAL
        if self.rq.acquired_locks != self.queues and lock_due:
            self._locks_tried_at = time.monotonic()
            if self.rq.acquire_locks():
                self.rq.register_birth()
        if self.rq.acquired_locks:
            self.rq.heartbeat()
            self.rq.enqueue_scheduled_jobs()

    def once(self) -> None:
        """Enqueue the jobs due now, if no other scheduler holds the locks (a burst worker's start)."""
        if self.rq.acquire_locks():
            try:
                self.rq.enqueue_scheduled_jobs()
            finally:
                self.rq.release_locks()

    def stop(self) -> None:
        """End :meth:`run` at its next tick."""
        self.stopping = True


def main(argv: list[str] | None = None) -> int:
    """Schedule the named queues' jobs until SIGTERM or the worker's end."""
    parser = argparse.ArgumentParser(prog="python -m workers.scheduler", description=__doc__)
    parser.add_argument("--worker", type=int, required=True, help="the process id of the worker it serves")
    parser.add_argument("queues", nargs="+", help="the queues whose scheduled jobs it enqueues")
    args = parser.parse_args(argv)
    stop_with_worker(args.worker)
    settings = Settings.from_env()
    logs.configure(settings)
    scheduler = Scheduler(args.queues, connect(settings))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: scheduler.stop())
    scheduler.run()
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
