"""Beyond one process: two web services and three workers on one Redis, and Redis behind Sentinel."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from redis import Redis
from redis.exceptions import RedisError

from app import create_app
from flowhook.dev.redis_server import EmbeddedRedis, free_port, redis_server_binary
from tests.conftest import ROOT, WorkerPool, caller
from tests.test_e2e import stop_tree, wait_for_log
from tests.waiting import poll_until_over, wait_until

pytestmark = pytest.mark.e2e


def start_web(tmp_path: Path, name: str, environment: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env={**environment, "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wait_for_log(log, "Listening at")
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
def cluster(redis_url: str, tmp_path: Path) -> Iterator[tuple[list[str], WorkerPool]]:
    """Two gunicorn web services and three workers, all separate processes, on one Redis.

    Each worker runs one job of a handler at a time, so that jobs held open must spread over them.
    """
    settings = {"FLOWHOOK_WORKER_CONCURRENCY": "1"}
    workers = WorkerPool(redis_url, "tests.handlers", log=tmp_path / "workers.log", settings=settings)
    workers.start(3)
    environment = {**workers.environment, "WEB_CONCURRENCY": "1"}
    webs = [start_web(tmp_path, f"web{number}", environment) for number in (1, 2)]
    try:
        yield [url for _, url in webs], workers
    finally:
        for process, _ in webs:
            stop_tree(process)
        workers.stop()


def post(url: str, handler: str, instance: str, variables: dict[str, str]) -> dict[str, str]:
    body = {"process_instance_id": instance, "variables": variables}
    response = requests.post(f"{url}/webservice/{handler}", json=body, timeout=20)
    assert response.status_code == 200, response.text
    answer: dict[str, str] = response.json()["data"]["variables"]
    return answer


def test_a_job_started_through_one_web_service_is_polled_through_another(
    cluster: tuple[list[str], WorkerPool], redis: Redis
) -> None:
    (first, second), _ = cluster
    gate = uuid.uuid4().hex
    pending = post(first, "gated", "scale-1", {"gate": gate})
    assert pending["gated_status"] == "pending"
    redis.rpush(f"test:gate:{gate}", "open")
    done = post(second, "gated", "scale-1", {"gate": gate, **pending})
    assert done["gated_status"] == "done"
    assert done["key"] == pending["gated_job"]


def test_work_is_spread_over_the_workers(cluster: tuple[list[str], WorkerPool], redis: Redis) -> None:
    webs, _ = cluster
    gates = [uuid.uuid4().hex for _ in range(3)]
    # Three jobs that each hold a worker until their gate opens: each must be on a worker of its own.
    pending = [post(webs[number % 2], "gated", f"spread-{gate}", {"gate": gate}) for number, gate in enumerate(gates)]
    for gate in gates:
        redis.rpush(f"test:gate:{gate}", "open")
    done = [
        post(webs[0], "gated", f"spread-{gate}", {"gate": gate, **answer})
        for gate, answer in zip(gates, pending, strict=True)
    ]
    assert {answer["gated_status"] for answer in done} == {"done"}
    assert len({answer["worker"] for answer in done}) == 3


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[tuple[str, Redis]]:
    """A Redis master and a Sentinel watching it (the same redis-server binary in sentinel mode)."""
    with EmbeddedRedis(tmp_path / "master", appendonly=False) as master:
        port = free_port()
        config = tmp_path / "sentinel.conf"
        config.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master.port} 1\n")
        process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL, cwd=tmp_path
        )
        client = Redis(port=port)
        wait_until(
            lambda: client.sentinel_get_master_addr_by_name("mymaster"),
            10,
            "the sentinel did not start",
            ignoring=(RedisError,),
        )
        try:
            yield f"127.0.0.1:{port}", Redis.from_url(master.url)
        finally:
            process.terminate()
            process.wait(10)


def test_redis_behind_sentinel(sentinel: tuple[str, Redis], tmp_path: Path) -> None:
    address, master = sentinel
    # REDIS_URL points nowhere: the master's address can only come from the Sentinel.
    settings = {
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "FLOWHOOK_SENTINELS": address,
        "FLOWHOOK_HANDLERS": "tests.handlers",
        "FLOWHOOK_QUEUE": f"sentinel-{uuid.uuid4().hex[:8]}",
    }
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers"], cwd=ROOT, env={**os.environ, **settings}, stdout=log, stderr=log
        )
    try:
        app = create_app(settings)
        answer = caller(app.test_client(), "sentinel-1")("typed", {"email": "ada@example.org", "count": "1"})
        assert answer["tp_status"] == "done", answer
        assert master.keys("rq:job:*")  # the job went to the master the Sentinel named
        worker.terminate()
        # Told to stop while it waits for a job on a Sentinel connection, it leaves at once and cleanly.
        assert worker.wait(10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_call_rides_out_a_sentinel_failover(tmp_path: Path) -> None:
    """The master dies while a job runs: the replica is promoted, and the flow gets its result."""
    with (
        EmbeddedRedis(tmp_path / "master", appendonly=False) as master,
        EmbeddedRedis(tmp_path / "replica", appendonly=False) as replica,
    ):
        Redis(port=replica.port).replicaof("127.0.0.1", master.port)
        port = free_port()
        (tmp_path / "sentinel.conf").write_text(
            f"port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
            "sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 10000\n"
        )
        sentinel = subprocess.Popen(
            [redis_server_binary(), str(tmp_path / "sentinel.conf"), "--sentinel"],
            stdout=subprocess.DEVNULL,
            cwd=tmp_path,
        )
        settings = {
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "FLOWHOOK_SENTINELS": f"127.0.0.1:{port}",
            "FLOWHOOK_HANDLERS": "tests.handlers",
            "FLOWHOOK_QUEUE": f"failover-{uuid.uuid4().hex[:8]}",
        }
        workers = WorkerPool(master.url, "tests.handlers", log=tmp_path / "worker.log", settings=settings)
        try:
            wait_until_replicated(Redis(port=replica.port), Redis(port=port))
            workers.start(1)
            call = caller(create_app(settings).test_client(), "failover-1")
            variables = {"seconds": "1.5"}
            pending = call("sleepy", variables)
            assert pending["sleepy_status"] == "pending"
            Redis(port=master.port).wait(1, 2000)  # the job is on the replica too
            master.kill()
            answers = [pending]
            answer = poll_until_over(call, "sleepy", variables, pending, each=answers.append)
            # the same job, all along
            assert {seen["sleepy_job"] for seen in answers[:-1]} == {pending["sleepy_job"]}
            assert (answer["sleepy_status"], answer["slept"]) == ("done", "1.5")
        finally:
            workers.stop()
            sentinel.terminate()
            sentinel.wait(10)


def wait_until_replicated(replica: Redis, sentinel: Redis, timeout: float = 10) -> None:
    """Until the replica follows its master and the Sentinel knows them both."""

    def replicated() -> bool:
        linked = replica.info("replication").get("master_link_status") == "up"
        known = bool(sentinel.sentinel_get_master_addr_by_name("mymaster"))
        return linked and known and bool(sentinel.sentinel_slaves("mymaster"))

    wait_until(replicated, timeout, "the replica or the Sentinel did not start", interval=0.1, ignoring=(RedisError,))
