"""Start a Flowhook worker: ``python -m workers``.

It serves every handler's queue with the class ``FLOWHOOK_WORKER_CLASS`` names: ``pool`` (many jobs
at once, the default), ``simple`` or ``fork`` (one at a time). ``python -m workers --check`` is the
container healthcheck: it succeeds while a worker of this host is alive, by the one definition of a
live worker (flowhook/liveness.py: a heartbeat in the last 10 s), as ``/readyz`` counts them.

Beside itself the worker starts RQ's scheduler as ``python -m workers.scheduler``, which ends with
it (workers/scheduler.py).

Nothing that opens sockets or threads is imported at the top of this module: the ``pool`` class
needs gevent to patch the process first, before RQ, redis-py and the handlers' own libraries.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import socket
import subprocess
import sys
from typing import Any

from flowhook.exceptions import FlowhookError
from flowhook.settings import Settings, unknown_setting_warnings

# The classes by FLOWHOOK_WORKER_CLASS, imported once chosen (and, for "pool", once patched).
WORKER_CLASSES = {
    "pool": "workers.pool:PoolWorker",
    "simple": "workers.classes:SimpleWorker",
    "fork": "workers.classes:ForkWorker",
}


def main(argv: list[str] | None = None) -> int:
    """Run one worker until it is told to stop (or, with --burst, until the queues are empty)."""
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop once the queues are empty")
    parser.add_argument("--check", action="store_true", help="exit 0 if a worker of this host is alive")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except FlowhookError as error:
        from flowhook import logs  # it imports Flask: only once the worker will not start

        logs.startup_error(None, str(error), source="flowhook worker")
        return 2
    if args.check:
        return check(settings)
    if settings.worker_class == "pool":
        from gevent import monkey

        monkey.patch_all()
    return serve(settings, burst=args.burst)


def serve(settings: Settings, burst: bool) -> int:
    """Import the handlers and the worker class, then work."""
    from flowhook import defaults, logs
    from flowhook.checks import warn_about_redis
    from flowhook.connection import HandlerQueue, connect, handler_queue
    from workers.job import prepare_jobs
    from workers.scheduler import Scheduler

    try:
        # Import every handler now: a broken module stops the worker at start, not mid-job,
        # and forked work horses inherit the imported code.
        handlers = prepare_jobs(settings)
    except FlowhookError as error:
        logs.startup_error(settings, str(error), source="flowhook worker")
        return 2
    logs.configure(settings)  # text, or JSON with FLOWHOOK_LOG_FORMAT=json
    for warning in unknown_setting_warnings():
        logging.getLogger(__name__).warning(warning)
    # The pool waits for jobs on a client of its own: every other command fails within 0.8 s. The
    # one-at-a-time classes wait on their one client, whose commands then fail within 1.8 s.
    connection = connect(settings, blocking=0 if settings.worker_class == "pool" else defaults.DEQUEUE_BLOCK)
    warn_about_redis(connection)
    queues = {name: handler_queue(settings, connection, name) for name in handlers}
    options: dict[str, Any] = {}
    if settings.worker_class == "pool":
        options = {
            "slots": {queue.name: handlers[name].settings.concurrency for name, queue in queues.items()},
            "dequeue_connection": connect(settings, blocking=defaults.DEQUEUE_BLOCK),
            "beat_connection": connect(settings),
        }
    module, _, name = WORKER_CLASSES[settings.worker_class].partition(":")
    worker = getattr(importlib.import_module(module), name)(
        list(queues.values()),
        # The host in the name lets --check find this container's own worker.
        name=f"{socket.gethostname()}.{os.getpid()}",
        connection=connection,
        serializer="rq.serializers.JSONSerializer",
        maintenance_interval=defaults.MAINTENANCE_INTERVAL,
        heartbeat_ttl=settings.heartbeat_ttl,
        worker_ttl=defaults.WORKER_TTL,
        queue_class=HandlerQueue,
        **options,
    )
    # A worker restarted in its container (restart policy) has its killed predecessor's host name and
    # pid 1, so its name is still registered; no live process holds it (one pid is one process on a
    # host), and RQ would refuse the name, crash-looping the container, until the entry expired.
    if connection.exists(worker.key) and not connection.hexists(worker.key, "death"):
        worker.register_death()
    logging.getLogger(__name__).info(
        "worker %s (%s) serves handlers: %s",
        worker.name,
        settings.worker_class,
        ", ".join(f"{name} ({handler.settings.concurrency} at once)" for name, handler in handlers.items())
        if settings.worker_class == "pool"
        else ", ".join(handlers),
    )
    # RQ's own INFO lines repeat Flowhook's (workers/base.py): shown when debugging.
    rq_logging_level = "DEBUG" if settings.log_level == "DEBUG" else "WARNING"
    if burst:
        Scheduler(worker.queue_names(), connection).once()
        worker.work(burst=True, logging_level=rq_logging_level)
        return 0
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "workers.scheduler", f"--worker={os.getpid()}", "--", *worker.queue_names()]
    )
    try:
        worker.work(logging_level=rq_logging_level)
    finally:
        scheduler.terminate()
        scheduler.wait()
    return 0


def check(settings: Settings) -> int:
    """0 when a worker of this host serving this deployment's queues is alive (a fresh heartbeat), else 1."""
    from typing import cast

    from redis.exceptions import RedisError
    from rq.worker_registration import get_keys

    from flowhook.connection import connect
    from flowhook.liveness import fresh_workers

    own = f"rq:worker:{socket.gethostname()}."
    connection = connect(settings)
    try:
        candidates = sorted(key for key in map(_text, get_keys(connection=connection)) if key.startswith(own))
        with connection.pipeline(transaction=False) as pipe:
            for key in candidates:
                pipe.hget(key, "queues")
            queues = cast(list[bytes | None], pipe.execute())
        serving = [
            key
            for key, names in zip(candidates, queues, strict=True)
            if names and any(name.startswith(f"{settings.queue_name}.") for name in names.decode().split(","))
        ]
        alive = sorted(fresh_workers(connection, serving, settings))
    except RedisError as error:
        print(f"flowhook worker check: Redis unavailable: {error}", file=sys.stderr)
        return 1
    if not alive:
        print(f"flowhook worker check: no live worker of host {socket.gethostname()}", file=sys.stderr)
        return 1
    print(f"flowhook worker check: alive: {', '.join(key.removeprefix('rq:worker:') for key in alive)}")
    return 0


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


if __name__ == "__main__":
    sys.exit(main())
