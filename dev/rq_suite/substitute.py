"""The pool worker in place of RQ's ``Worker`` and ``SimpleWorker``, as RQ's tests construct them.

RQ's tests build workers as RQ's users do: ``Worker(queues, connection=...)`` or
``SimpleWorker(...)``, with RQ's own keyword arguments only. :class:`SuitePoolWorker` takes those
and derives what the pool needs beyond them from the worker's connection. :func:`substitute_pool`
puts it under the names those tests import (``rq.Worker``, ``rq.SimpleWorker``, and the same in
``rq.worker``) before any test module is imported, so every ``from rq import Worker`` in the suite,
RQ's command line (``rq worker``, ``rqworker``, whose default class is the name ``rq.Worker``) and
RQ's ``WorkerPool`` get the pool class. RQ's other classes (``SpawnWorker``, ``HerokuWorker``,
``RandomWorker``, ``RoundRobinWorker``) subclass the fork worker and stay RQ's.
"""

from __future__ import annotations

import inspect
import time
import weakref
from collections import defaultdict
from typing import Any

import gevent
import rq
import rq.worker
from redis import ConnectionPool, Redis
from rq.connections import parse_connection
from rq.queue import Queue
from rq.utils import get_connection_from_queues
from rq.worker.base import BaseWorker

from flowhook import defaults
from workers.pool import PoolWorker

# Jobs of each queue a worker of the suite runs at once: several, so that the suite tests the pool
# running jobs side by side, as Flowhook's own handlers do (their default concurrency is 10).
SLOTS_PER_QUEUE = 4
# Every pool worker made in this process, for stop_pool_workers.
_made: weakref.WeakSet[SuitePoolWorker] = weakref.WeakSet()


def client_like(connection: Redis) -> Redis:
    """A client to the same server and database as ``connection``, with a connection pool of its own."""
    client_class, connection_class, connection_kwargs = parse_connection(connection)
    return client_class(connection_pool=ConnectionPool(connection_class=connection_class, **connection_kwargs))


class SuitePoolWorker(PoolWorker):
    """The pool worker, constructed with RQ's worker arguments alone.

    Its waits for jobs and its job heartbeat use clients of their own to the worker's server, as
    ``python -m workers`` gives them; every queue has ``SLOTS_PER_QUEUE`` slots.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # RQ passes its own arguments by position too (``find_by_key``: the name); the pool takes
        # all but the queues by name.
        arguments = inspect.signature(BaseWorker.__init__).bind(self, *args, **kwargs).arguments
        del arguments["self"]
        queues = arguments.pop("queues")
        connection = arguments.get("connection") or get_connection_from_queues(
            [queues] if isinstance(queues, str | Queue) else queues
        )
        assert connection is not None, "RQ's worker needs a connection or a queue that has one"
        super().__init__(
            queues,
            slots=defaultdict(lambda: SLOTS_PER_QUEUE),
            dequeue_connection=client_like(connection),
            beat_connection=client_like(connection),
            **arguments,
        )
        _made.add(self)


def substitute_pool() -> None:
    """Put :class:`SuitePoolWorker` under the names RQ's tests and RQ's command line import."""
    rq.Worker = rq.worker.Worker = SuitePoolWorker  # type: ignore[misc,assignment]
    rq.SimpleWorker = rq.worker.SimpleWorker = SuitePoolWorker  # type: ignore[misc]


def stop_pool_workers() -> None:
    """Stop every pool worker of this process that still runs jobs or waits for them.

    A test that ends (or times out) with a worker still working would leave its greenlets taking
    the jobs of the tests after it, from the same queue names in the same database. A job a
    worker takes as it stops goes back to its queue; this waits (a second or so) until none is
    being taken.
    """
    workers = list(_made)
    for worker in workers:
        worker.stopping.set()
        worker.jobs.kill(block=False)
    deadline = time.monotonic() + defaults.DEQUEUE_BLOCK + 1
    while any(worker.taking for worker in workers) and time.monotonic() < deadline:
        gevent.sleep(0.05)
