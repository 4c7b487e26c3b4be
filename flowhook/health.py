"""Health endpoints for load balancers and compose: ``/healthz`` (alive) and ``/readyz`` (can serve)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask
from redis.exceptions import RedisError

from flowhook import liveness
from flowhook.extension import current_flowhook
from flowhook.jobstore import JobStore
from flowhook.registry import Registry

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer while the process serves requests at all."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Ready when Redis answers and every handler has a live worker; else 503."""
    flowhook = current_flowhook()
    missing = []
    workers: dict[str, set[str]] = {}
    try:
        workers = live_workers(flowhook.store, flowhook.registry)
    except RedisError:
        missing.append("redis")
    unserved = [name for name in flowhook.registry if not workers.get(name)]
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


def live_workers(store: JobStore, registry: Registry) -> dict[str, set[str]]:
    """The live workers (flowhook/liveness.py) that listen on each handler's queue, by handler.

    Raises:
        RedisError: when Redis cannot be reached.
    """
    queues = {name: store.queue(name).name for name in registry}
    return liveness.live_workers(store.connection, queues, store.settings)


def init_app(app: Flask) -> None:
    """Serve the health endpoints."""
    app.register_blueprint(bp)
