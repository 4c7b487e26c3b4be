"""Graceful shutdown: SIGTERM lets the web service answer calls in flight, and a worker finish its job."""

from __future__ import annotations

import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from redis import Redis

from app import create_app
from tests.conftest import WorkerPool, caller
from tests.test_scale_out import post, start_web
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_sigterm_to_the_web_service_lets_calls_in_flight_answer(
    test_workers: WorkerPool, redis: Redis, tmp_path: Path
) -> None:
    web, url = start_web(tmp_path, "web", test_workers.environment)
    gate = uuid.uuid4().hex
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(post, url, "gated", "shutdown-1", {"gate": gate})  # waits its 1 s budget
        wait_until(lambda: redis.exists(f"test:runs:{gate}"), 10, "the call did not start its job", interval=0.01)
        web.send_signal(signal.SIGTERM)
        answer = in_flight.result(timeout=20)
    assert answer["gated_status"] == "pending"  # answered, not cut off
    assert web.wait(timeout=30) == 0
    redis.rpush(f"test:gate:{gate}", "open")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=2)


def test_sigterm_to_a_worker_finishes_the_running_job(redis_url: str, redis: Redis, tmp_path: Path) -> None:
    pool = WorkerPool(redis_url, "tests.handlers", log=tmp_path / "worker.log")
    pool.start(1)
    worker = pool.processes[0]
    app = create_app({"REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.handlers", "FLOWHOOK_QUEUE": pool.queue})
    call = caller(app.test_client(), "shutdown-2")
    gate = uuid.uuid4().hex
    try:
        pending = call("gated", {"gate": gate})
        assert pending["gated_status"] == "pending"  # the job is running in the worker now
        worker.send_signal(signal.SIGTERM)
        redis.rpush(f"test:gate:{gate}", "open")
        assert worker.wait(timeout=30) == 0
        done = call("gated", {"gate": gate, **pending})
        assert done["gated_status"] == "done"  # the job finished before the worker left
    finally:
        pool.stop()
    assert "warm shut down requested" in (tmp_path / "worker.log").read_text()
