"""What counts as a live worker: one definition for ``/readyz``, ``/metrics``, ``flask jobs`` and
``python -m workers --check``.

RQ keeps a worker's registration until its key expires, ``WORKER_TTL`` + 60 s (90 s) after its last
heartbeat, so a registration alone does not say a worker is alive. A worker heartbeats every second
while it waits for jobs, and every quarter of ``FLOWHOOK_HEARTBEAT_TTL`` (5 s) while it runs them:
one silent for ``longest_silence`` is dead, stuck, or cut off from Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import cast

from redis import Redis
from rq.utils import now, utcparse
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from flowhook import defaults
from flowhook.settings import Settings


def longest_silence(settings: Settings) -> float:
    """Seconds without a heartbeat after which a worker counts as gone."""
    return max(defaults.WORKER_SILENCE, settings.heartbeat_ttl / 2)


def fresh_workers(connection: Redis, worker_keys: Iterable[bytes | str], settings: Settings) -> set[str]:
    """The keys among ``worker_keys`` of workers whose last heartbeat is recent, in one round trip.

    Raises:
        RedisError: when Redis cannot be reached.
    """
    keys = sorted({key.decode() if isinstance(key, bytes) else key for key in worker_keys})
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(key, "last_heartbeat")
        beats = cast(list[bytes | None], pipe.execute())
    fresh_since = now() - timedelta(seconds=longest_silence(settings))
    return {key for key, beat in zip(keys, beats, strict=True) if beat and utcparse(beat.decode()) > fresh_since}


def live_workers(connection: Redis, queues: Mapping[str, str], settings: Settings) -> dict[str, set[str]]:
    """The keys of the live workers listening on each queue, by the queue's handler.

    Args:
        connection: Where the workers are registered.
        queues: Each handler's queue name, by handler.
        settings: The heartbeat settings the workers run with.

    Raises:
        RedisError: when Redis cannot be reached.
    """
    names = list(queues)
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.smembers(WORKERS_BY_QUEUE_KEY % queues[name])
        listening = [{key.decode() for key in members} for members in cast(list[set[bytes]], pipe.execute())]
    alive = fresh_workers(connection, set().union(*listening), settings)
    return {name: members & alive for name, members in zip(names, listening, strict=True)}
