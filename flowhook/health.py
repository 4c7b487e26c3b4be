"""Health endpoints for load balancers and compose: ``/healthz`` (alive) and ``/readyz`` (can serve)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app
from redis.exceptions import RedisError
from rq import Worker

from flowhook.jobs import JobStore

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer while the process serves requests at all."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Ready when Redis answers and at least one live worker listens on the queue; else 503."""
    store: JobStore = current_app.extensions["flowhook"].store
    missing = []
    workers = 0
    try:
        store.connection.ping()
        # RQ keeps a worker's registration only while its heartbeat is fresh.
        workers = len(Worker.all(queue=store.queue))
    except RedisError:
        missing.append("redis")
    if "redis" not in missing and not workers:
        missing.append("workers")
    body = {
        "ready": not missing,
        "redis": "unavailable" if "redis" in missing else "ok",
        "workers": workers,
        "missing": missing,
    }
    return body, 503 if missing else 200


def init_app(app: Flask) -> None:
    """Serve the health endpoints."""
    app.register_blueprint(bp)
