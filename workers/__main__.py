"""Start an RQ worker for Flowhook's queue: ``python -m workers``."""

from __future__ import annotations

import argparse
import logging
import sys

from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer
from rq.worker.base import BaseWorker

from flowhook import defaults
from flowhook.connection import connect, job_queue
from flowhook.exceptions import FlowhookError
from flowhook.settings import Settings
from workers.jobs import registry

WORKER_CLASSES: dict[str, type[BaseWorker]] = {"simple": SimpleWorker, "fork": Worker}


def main(argv: list[str] | None = None) -> int:
    """Run one worker until it is told to stop (or, with --burst, until the queue is empty)."""
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop once the queue is empty")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        # Import every handler now: a broken module stops the worker at start, not mid-job,
        # and forked work horses inherit the imported code.
        handlers = registry()
    except FlowhookError as error:
        print(f"flowhook worker: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    connection = connect(settings)
    queue = job_queue(settings, connection)
    worker = WORKER_CLASSES[settings.worker_class](
        [queue],
        connection=connection,
        serializer=JSONSerializer,
        maintenance_interval=defaults.MAINTENANCE_INTERVAL,
        worker_ttl=defaults.WORKER_TTL,
    )
    logging.getLogger(__name__).info("worker %s serves handlers: %s", worker.name, ", ".join(handlers))
    worker.work(burst=args.burst, with_scheduler=True, logging_level=settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
