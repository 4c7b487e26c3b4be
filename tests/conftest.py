"""Fixtures: a real Redis, real RQ workers in subprocesses, and the app in the Flask tutorial's shape."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import HealthCheck, settings
from redis import ConnectionPool, Redis
from rq import Worker

from app import create_app
from flowhook.dev.redis_server import EmbeddedRedis
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent

CallFunction = Callable[..., dict[str, str]]

# Property tests that cannot flake: the same examples every run (derandomize), as many each time,
# and no check of how long generating or running them takes, which depends on the machine's load.
settings.register_profile(
    "flowhook",
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    print_blob=False,
)
# `make test-fast` tries fewer examples (the same ones each run, too).
settings.register_profile("fast", settings.get_profile("flowhook"), max_examples=25)
settings.load_profile(os.environ.get("FLOWHOOK_HYPOTHESIS_PROFILE", "flowhook"))

# The tiers (see pyproject's markers), one per test: `e2e` is marked by hand; `workers` by hand on
# tests that start subprocesses themselves and added here to those using a fixture that starts RQ
# worker processes; `unit` added to the rest. `slow`, by hand, cuts across them.
WORKER_FIXTURES = {"test_workers", "example_workers", "start_workers"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            continue
        if WORKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.workers)
        elif item.get_closest_marker("workers") is None:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session", autouse=True)
def _leftover_redis_connections_closed() -> Iterator[None]:
    """Close the Redis connections of the apps the tests made, when the session ends.

    The garbage collector would, and may close a socket before the connection holding it: a
    ResourceWarning, an error with warnings as errors, in whichever test happens to be running.
    """
    yield
    for pool in [thing for thing in gc.get_objects() if isinstance(thing, ConnectionPool)]:
        pool.disconnect()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when it is set, else a private redis-server for this test session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False) as server:
        yield server.url


@pytest.fixture(scope="session")
def redis(redis_url: str) -> Iterator[Redis]:
    """A plain client of the test Redis, for opening gates and checking keys."""
    client = Redis.from_url(redis_url)
    yield client
    client.close()


class OrderAPI(BaseHTTPRequestHandler):
    """A stand-in for a shop's order API, the outside world the order_lookup handler calls.

    ``/orders/A1`` is shipped, ``/orders/slow`` answers after 1.5 s, ``/orders/busy-*`` answers
    503 the first time, anything else (or another e-mail address) is 404.
    """

    # Shared by every request on purpose: the tests read what the handler sent.
    requests_seen: list[dict[str, str]] = []
    lock = threading.Lock()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        order_id = url.path.removeprefix("/orders/")
        with self.lock:
            earlier = sum(1 for seen in self.requests_seen if seen["order_id"] == order_id)
            self.requests_seen.append({"order_id": order_id, "key": self.headers.get("Idempotency-Key", "")})
        if order_id == "slow":
            time.sleep(1.5)
        if order_id.startswith("busy-") and not earlier:
            self._answer(503, {"error": "busy"})
        elif order_id in ("A1", "slow") or order_id.startswith("busy-"):
            if parse_qs(url.query).get("email") != ["ada@example.org"]:
                self._answer(404, {"error": "not found"})
            else:
                self._answer(200, {"status": "shipped", "eta": "2026-11-30", "items": ["book", "pen"]})
        else:
            self._answer(404, {"error": "not found"})

    def _answer(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="session")
def order_api() -> Iterator[str]:
    """The fake order API on a loopback port; ORDER_API_URL points at it for this session."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), OrderAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDER_API_URL", url)  # inline attempts run in this process; workers inherit it
        yield url
    server.shutdown()
    server.server_close()


class SlowBackend(BaseHTTPRequestHandler):
    """A back end that answers ``/wait?seconds=S`` after S seconds and counts the requests in flight."""

    lock = threading.Lock()
    in_flight = 0
    most_in_flight = 0

    def do_GET(self) -> None:
        seconds = float(parse_qs(urlsplit(self.path).query)["seconds"][0])
        with self.lock:
            SlowBackend.in_flight += 1
            SlowBackend.most_in_flight = max(SlowBackend.most_in_flight, SlowBackend.in_flight)
        try:
            time.sleep(seconds)
        finally:
            with self.lock:
                SlowBackend.in_flight -= 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def slow_backend() -> Iterator[str]:
    """The slow back end's URL; the most requests it saw at once are counted from zero per test."""
    SlowBackend.in_flight = SlowBackend.most_in_flight = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowBackend)
    server.request_queue_size = 256  # every conversation's request at once
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/wait"
    server.shutdown()
    server.server_close()


@dataclass
class WorkerPool:
    """RQ workers running as subprocesses (`python -m workers`) on a queue of their own."""

    redis_url: str
    handlers_package: str
    queue: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    log: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "FLOWHOOK_HANDLERS": self.handlers_package,
            "FLOWHOOK_QUEUE": self.queue,
            "PYTHONPATH": str(ROOT),
            **self.settings,
        }

    def start(self, count: int, timeout: float = 30.0) -> None:
        """Start ``count`` more workers and wait until each of them listens on the queue."""
        assert self.log is not None
        with self.log.open("ab") as output:  # the workers write to their own copies of it
            started = [
                subprocess.Popen(
                    [sys.executable, "-m", "workers"],
                    cwd=ROOT,
                    env=self.environment,
                    stdout=output,
                    stderr=output,
                    start_new_session=True,  # a process group of its own: see stop()
                )
                for _ in range(count)
            ]
        self.processes.extend(started)
        # Workers are named host.pid: wait for these very processes, not for any registration.
        expected = {f"{socket.gethostname()}.{process.pid}" for process in started}

        def listening() -> bool:
            if any(process.poll() is not None for process in started):
                pytest.fail(f"a worker exited at start; see {self.log}")
            return expected <= {worker.name for worker in Worker.all(connection=connection)}

        with Redis.from_url(self.redis_url) as connection:
            wait_until(listening, timeout, f"the workers did not start; see {self.log}")

    def stop(self) -> None:
        """Ask every worker to stop (warm shutdown), then make sure it and its children have."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            # A scheduler still starting when its worker was killed may outlive it; it is in the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def _pool(redis_url: str, package: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    pool = WorkerPool(redis_url, package, log=tmp_path_factory.mktemp("workers") / "workers.log")
    pool.start(2)
    yield pool
    pool.stop()


StartWorkers = Callable[..., WorkerPool]


@pytest.fixture
def start_workers(redis_url: str, tmp_path: Path) -> Iterator[StartWorkers]:
    """Start workers of the test handlers on queues of their own, with extra settings."""
    pools: list[WorkerPool] = []

    def start(count: int = 1, **settings: str) -> WorkerPool:
        pool = WorkerPool(redis_url, "tests.handlers", log=tmp_path / f"workers-{len(pools)}.log", settings=settings)
        pools.append(pool)
        pool.start(count)
        return pool

    yield start
    for pool in pools:
        pool.stop()


@pytest.fixture(scope="session")
def test_workers(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    """Two workers serving the test-only handlers in tests/handlers."""
    yield from _pool(redis_url, "tests.handlers", tmp_path_factory)


@pytest.fixture(scope="session")
def example_workers(redis_url: str, order_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    """Two workers serving the example handlers shipped in handlers/, with the fake order API."""
    yield from _pool(redis_url, "handlers", tmp_path_factory)


@pytest.fixture
def app(redis_url: str, test_workers: WorkerPool, tmp_path: Path) -> Flask:
    """The app serving the test-only handlers, with its own workers."""
    return create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_url,
            # Never the developer's own `make run`, which may be serving from this folder.
            "FLOWHOOK_STATE_FILE": str(tmp_path / "run.json"),
            "FLOWHOOK_HANDLERS": test_workers.handlers_package,
            "FLOWHOOK_QUEUE": test_workers.queue,
        }
    )


@pytest.fixture
def example_app(redis_url: str, example_workers: WorkerPool, tmp_path: Path) -> Flask:
    """The app serving the example handlers, with a short budget so `sleep` turns pending fast."""
    return create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_url,
            "FLOWHOOK_STATE_FILE": str(tmp_path / "run.json"),
            "FLOWHOOK_HANDLERS": example_workers.handlers_package,
            "FLOWHOOK_QUEUE": example_workers.queue,
            "FLOWHOOK_BUDGET": "1",
        }
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def instance() -> str:
    """A fresh conversation id, so that no test attaches to another test's job."""
    return f"conv-{uuid.uuid4().hex}"


def caller(client: FlaskClient, instance: str) -> CallFunction:
    """A function that makes a well-formed WebService call and returns the answer's variables."""

    def call(handler: str, variables: dict[str, Any] | None = None, **envelope: Any) -> dict[str, str]:
        body = {"process_instance_id": instance, "variables": variables or {}, **envelope}
        response = client.post(f"/webservice/{handler}", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json is not None
        answer: dict[str, str] = response.json["data"]["variables"]
        return answer

    return call


@pytest.fixture
def call(client: FlaskClient, instance: str) -> CallFunction:
    """Call a test-only handler as LoyJoy would, in a conversation of this test's own."""
    return caller(client, instance)
