"""Health endpoints for load balancers and compose: ``/healthz`` (alive) and ``/readyz`` (can serve)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from flask import Blueprint, Flask
from redis.exceptions import RedisError
from rq.utils import now, utcparse
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from flowhook import defaults
from flowhook.dispatch import Dispatcher
from flowhook.extension import current_flowhook
from flowhook.settings import Settings

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer while the process serves requests at all."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Ready when Redis answers and every handler has a live worker; else 503."""
    dispatcher = current_flowhook().dispatcher
    missing = []
    workers: dict[str, set[str]] = {}
    try:
        workers = live_workers(dispatcher)
    except RedisError:
        missing.append("redis")
    unserved = [name for name in dispatcher.registry if not workers.get(name)]
    if "redis" not in missing and unserved:
        missing.append("workers")
    body = {
        "ready": not missing,
        "redis": "unavailable" if "redis" in missing else "ok",
        "workers": len(set().union(*workers.values())),
        "unserved": unserved if "redis" not in missing else [],
        "missing": missing,
    }
    return body, 503 if missing else 200


def live_workers(dispatcher: Dispatcher) -> dict[str, set[str]]:
    """The workers with a fresh heartbeat that listen on each handler's queue, by handler.

    RQ keeps a dead worker's registration until its key expires (a minute and a half). A worker
    heartbeats every second while it waits for jobs, and every quarter of ``FLOWHOOK_HEARTBEAT_TTL``
    (5 s) while it runs them: one silent for twice that is dead, or cut off from Redis.

    Raises:
        RedisError: when Redis cannot be reached.
    """
    connection = dispatcher.store.connection
    names = list(dispatcher.registry)
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.smembers(WORKERS_BY_QUEUE_KEY % dispatcher.store.queue(name).name)
        listening = cast(list[set[bytes]], pipe.execute())
    keys = sorted(set().union(*listening))
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(key, "last_heartbeat")
        beats = cast(list[bytes | None], pipe.execute())
    fresh_since = now() - timedelta(seconds=longest_silence(dispatcher.store.settings))
    alive = {key for key, beat in zip(keys, beats, strict=True) if beat and utcparse(beat.decode()) > fresh_since}
    return {name: {key.decode() for key in members & alive} for name, members in zip(names, listening, strict=True)}


def longest_silence(settings: Settings) -> float:
    """Seconds without a heartbeat after which a worker counts as gone (dead, or cut off from Redis)."""
    return max(defaults.WORKER_SILENCE, settings.heartbeat_ttl / 2)


def init_app(app: Flask) -> None:
    """Serve the health endpoints."""
    app.register_blueprint(bp)
