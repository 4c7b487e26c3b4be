"""The Redis connection and the RQ queue, built the same way for the web app and the workers."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from flowhook import defaults
from flowhook.settings import Settings


def connect(settings: Settings) -> Redis:
    """Open (lazily) a connection pool to the settings' Redis."""
    return Redis.from_url(
        settings.redis_url,
        # Every call waiting on its budget holds a connection, two for a moment while it starts a
        # job; redis-py's default of 100 would fail calls under load long before gevent's limit.
        max_connections=2 * settings.web_connections + 16,
        # Fail fast when Redis is down, but let a long-poll block for a whole budget.
        socket_connect_timeout=1.0,
        socket_timeout=defaults.MAX_BUDGET + 5,
        health_check_interval=30,
    )


def job_queue(settings: Settings, connection: Redis) -> Queue:
    """The queue handler jobs go through; JSON keeps job arguments and results readable and safe."""
    return Queue(
        settings.queue_name,
        connection=connection,
        serializer=JSONSerializer,
        default_timeout=settings.job_timeout,
    )
