"""/healthz and /readyz, and the start-up warnings about a Redis that could lose jobs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from redis import Redis

from app import create_app
from flowhook.checks import redis_warnings
from flowhook.dev.redis_server import EmbeddedRedis
from tests.conftest import ROOT


def test_healthz_answers_while_the_process_serves(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_readyz_is_ready_with_redis_and_a_live_worker(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"ready": True, "redis": "ok", "workers": 2, "unserved": [], "missing": []}


def test_readyz_names_missing_workers(redis_url: str) -> None:
    app = create_app(
        {"REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.handlers", "FLOWHOOK_QUEUE": "nobody-listens"}
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.json
    assert body is not None
    assert (body["ready"], body["workers"], body["missing"]) == (False, 0, ["workers"])
    assert body["unserved"] == sorted(app.extensions["flowhook"].registry)  # every handler, by name


def test_readyz_names_an_unavailable_redis() -> None:
    app = create_app({"REDIS_URL": "redis://127.0.0.1:1/0", "FLOWHOOK_HANDLERS": "tests.handlers"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "ready": False,
        "redis": "unavailable",
        "workers": 0,
        "unserved": [],
        "missing": ["redis"],
    }


@pytest.mark.slow  # waits out budgets for seconds
@pytest.mark.workers  # starts a subprocess
def test_an_evicting_redis_without_persistence_draws_both_warnings(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, appendonly=False) as server, Redis.from_url(server.url) as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
        warnings = redis_warnings(client)
        assert len(warnings) == 2
        assert "maxmemory-policy is allkeys-lru" in warnings[0]
        assert "keeps nothing on disk" in warnings[1]

        environment = {**os.environ, "REDIS_URL": server.url, "FLOWHOOK_QUEUE": "warned"}
        command = [sys.executable, "-m", "workers", "--burst"]
        worker = subprocess.run(
            command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False
        )
        assert worker.returncode == 0
        assert "WARNING flowhook.checks: Redis maxmemory-policy is allkeys-lru" in worker.stderr


def test_a_safe_redis_draws_no_warning(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, appendonly=True) as server, Redis.from_url(server.url) as client:
        assert redis_warnings(client) == []
