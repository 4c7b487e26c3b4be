"""Start an RQ worker for Flowhook's queue: ``python -m workers``.

``python -m workers --check`` is the container healthcheck: it succeeds while a worker of this host
is registered in Redis with a fresh heartbeat.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from redis.exceptions import RedisError
from rq import Worker
from rq.serializers import JSONSerializer

from flowhook import defaults
from flowhook.checks import warn_about_redis
from flowhook.connection import connect, job_queue
from flowhook.exceptions import FlowhookError
from flowhook.settings import Settings
from workers.jobs import registry
from workers.worker import FlowhookForkWorker, FlowhookSimpleWorker, FlowhookWorker

WORKER_CLASSES: dict[str, type[FlowhookWorker]] = {"simple": FlowhookSimpleWorker, "fork": FlowhookForkWorker}


def main(argv: list[str] | None = None) -> int:
    """Run one worker until it is told to stop (or, with --burst, until the queue is empty)."""
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop once the queue is empty")
    parser.add_argument("--check", action="store_true", help="exit 0 if a worker of this host is alive")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.check:
            return check(settings)
        # Import every handler now: a broken module stops the worker at start, not mid-job,
        # and forked work horses inherit the imported code.
        handlers = registry()
    except FlowhookError as error:
        print(f"flowhook worker: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    connection = connect(settings)
    warn_about_redis(connection)
    worker = WORKER_CLASSES[settings.worker_class](
        [job_queue(settings, connection)],
        # The host in the name lets --check find this container's own worker.
        name=f"{socket.gethostname()}.{os.getpid()}",
        connection=connection,
        serializer=JSONSerializer,
        maintenance_interval=defaults.MAINTENANCE_INTERVAL,
        heartbeat_ttl=settings.heartbeat_ttl,
        worker_ttl=defaults.WORKER_TTL,
    )
    # A worker restarted in its container (restart policy) has its killed predecessor's host name and
    # pid 1, so its name is still registered; no live process holds it (one pid is one process on a
    # host), and RQ would refuse the name, crash-looping the container, until the entry expired.
    if connection.exists(worker.key) and not connection.hexists(worker.key, "death"):
        worker.register_death()  # type: ignore[no-untyped-call]  # RQ's is unannotated
    logging.getLogger(__name__).info("worker %s serves handlers: %s", worker.name, ", ".join(handlers))
    worker.work(burst=args.burst, with_scheduler=True, logging_level=settings.log_level)
    return 0


def check(settings: Settings) -> int:
    """0 when a worker of this host listens on the queue with a fresh heartbeat, else 1."""
    host = socket.gethostname()
    try:
        names = [worker.name for worker in Worker.all(queue=job_queue(settings, connect(settings)))]
    except RedisError as error:
        print(f"flowhook worker check: Redis unavailable: {error}", file=sys.stderr)
        return 1
    alive = [name for name in names if name.startswith(f"{host}.")]
    if not alive:
        print(f"flowhook worker check: no live worker of host {host} on queue {settings.queue_name}", file=sys.stderr)
        return 1
    print(f"flowhook worker check: alive: {', '.join(alive)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
