"""The Redis connection and the RQ queue, built the same way for the web app and the workers."""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelManagedConnection
from redis.utils import SENTINEL
from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.serializers import JSONSerializer
from rq.utils import now
from rq.worker.base import BaseWorker

from flowhook import defaults
from flowhook.settings import Settings

log = logging.getLogger(__name__)


class _SentinelConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that, like a plain one, is dropped when a read is interrupted.

    redis-py's own keeps it (its ``read_response`` defaults to ``disconnect_on_error=False``): an RQ
    worker told to stop while it waits for a job would put the connection back in the pool with
    the old reply still to come, and read that reply as the answer to its next command.
    """

    def read_response(
        self,
        disable_decoding: bool = False,
        *,
        timeout: float | object = SENTINEL,
        disconnect_on_error: bool | None = True,
        push_request: bool | None = False,
    ) -> Any:
        return super().read_response(
            disable_decoding=disable_decoding,
            timeout=timeout,
            disconnect_on_error=disconnect_on_error,
            push_request=push_request,
        )


def connect(settings: Settings, *, blocking: float = 0.0) -> Redis:
    """Open (lazily) a connection pool to the settings' Redis, or to the master Sentinel names.

    Args:
        settings: Where Redis is.
        blocking: Longest blocking command (seconds) the pool's connections will send: their read
            timeout is that much longer than every other command's.
    """
    options: dict[str, Any] = {
        # Every call waiting on its budget holds a connection, two for a moment while it starts a
        # job; redis-py's default of 100 would fail calls under load long before gevent's limit.
        "max_connections": 2 * settings.web_connections + 16,
        # Fail fast when Redis is down or hangs; long-polls block in shorter slices (jobstore.py).
        "socket_connect_timeout": defaults.REDIS_TIMEOUT,
        "socket_timeout": defaults.REDIS_TIMEOUT + blocking,
        "health_check_interval": 30,
    }
    if not settings.sentinels:
        return Redis.from_url(settings.redis_url, **options)
    # With Sentinel, REDIS_URL still gives the database and the credentials of the master.
    url = parse_url(settings.redis_url)
    sentinel = Sentinel(
        [(host, int(port)) for host, port in (item.rsplit(":", 1) for item in settings.sentinels.split(","))],
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
    )
    master: Redis = sentinel.master_for(
        settings.sentinel_master,
        db=url.get("db", 0),
        username=url.get("username"),
        password=url.get("password"),
        connection_class=_SentinelConnection,
        **options,
    )
    return master


class HandlerQueue(Queue):
    """RQ's queue, with two faults of a worker that dies or is cut off from Redis made short."""

    def acquire_maintenance_lock(self) -> bool:
        """Take the lock on cleaning this queue's registries, unless another process holds it.

        RQ's lasts 15 minutes; this one 30 s: a worker killed while it cleaned the registries (in
        a pool worker, a job that ends the process may do so at any moment) would otherwise keep
        its dead jobs unanswered that long.
        """
        return bool(self.connection.set(self.registry_cleaning_key, 1, nx=True, ex=defaults.MAINTENANCE_LOCK_TTL))

    @property
    def intermediate_queue(self) -> IntermediateQueue:
        """Where a job waits between a worker taking it and starting it."""
        return UnstartedJobsRequeued(self.key, connection=self.connection)


class UnstartedJobsRequeued(IntermediateQueue):
    """RQ's intermediate queue, whose jobs no worker started go back to the front of their queue.

    A worker takes a job by moving it here (BLMOVE) and starts it a moment later. If the worker
    dies in between, or a network cut loses Redis's reply to the move, the job stays here: RQ's
    maintenance fails it a minute later ("stuck"). It never ran, so running it is safe: once seen
    here by two maintenance runs ``UNSTARTED_AFTER`` seconds apart, it goes back to its queue.
    """

    def set_first_seen(self, job_id: str) -> bool:
        """Note when maintenance first saw the job here, unless noted already; whether this noted it.

        RQ keeps the note a day. Maintenance may look just as a worker starts the job, and write the
        note after the job has ended: kept a day, such notes outlived every job. This one lasts as
        long as the next looks need it.
        """
        key = self.get_first_seen_key(job_id)
        return bool(self.connection.set(key, now().timestamp(), nx=True, ex=defaults.FIRST_SEEN_TTL))

    def should_be_cleaned_up(self, job_id: str) -> bool:
        """Whether the job has been here, unstarted, for longer than a start takes."""
        first_seen = self.get_first_seen(job_id)
        return first_seen is not None and (now() - first_seen).total_seconds() > defaults.UNSTARTED_AFTER

    def cleanup(self, worker: BaseWorker, queue: Queue) -> None:
        """Put every job that no worker started back at the front of its queue (RQ's would fail it)."""
        for job_id in self.get_job_ids():
            if job_id in queue.started_job_registry:
                continue
            if queue.fetch_job(job_id) is None:
                self.remove(job_id)  # expired meanwhile: nothing left to run
            elif not self.set_first_seen(job_id) and self.should_be_cleaned_up(job_id):
                with self.connection.pipeline() as pipe:
                    pipe.lrem(self.key, 1, job_id)
                    queue.push_job_id(job_id, pipeline=pipe, at_front=True)
                    pipe.delete(self.get_first_seen_key(job_id))
                    pipe.execute()
                log.warning("job %s was taken from its queue but never started; it is queued again", job_id)


def handler_queue(settings: Settings, connection: Redis, handler: str) -> HandlerQueue:
    """The queue of one handler's jobs; JSON keeps job arguments and results readable and safe.

    Each handler has a queue of its own, so that a backlog of one handler's jobs never stands in
    front of another's, and a worker can give each handler slots of its own.
    """
    return HandlerQueue(
        f"{settings.queue_name}.{handler}",
        connection=connection,
        serializer=JSONSerializer,
        default_timeout=settings.job_timeout,
    )
