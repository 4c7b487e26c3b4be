"""The service under gunicorn through Redis outages, a resend storm and a killed web process."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests
from redis import Redis
from rq import Queue

from flowhook.contract import UNAVAILABLE
from flowhook.dev.redis_server import EmbeddedRedis, free_port
from tests import waiting
from tests.conftest import WorkerPool
from tests.test_e2e import stop_tree
from tests.test_scale_out import post, start_web
from tests.test_worker_path import open_gate, runs

pytestmark = pytest.mark.e2e

Answer = dict[str, str]


@dataclass
class Stack:
    """Redis of its own, workers and web processes (gunicorn), all separate processes."""

    redis_server: EmbeddedRedis
    redis: Redis
    workers: WorkerPool
    webs: list[tuple[subprocess.Popen[bytes], str]]

    @property
    def url(self) -> str:
        return self.webs[0][1]


def start_stack(tmp_path: Path, package: str, *, webs: int = 1, appendonly: bool = False, **settings: str) -> Stack:
    # A fixed port, so that a restarted Redis is where the web processes and workers left it.
    server = EmbeddedRedis(tmp_path / "redis", appendonly=appendonly, port=free_port())
    server.start()
    # Polls held 1 s, as long as the test handlers' budget: these tests time what a flow sees of an
    # outage (tests/test_polls.py times polls held longer).
    settings = {"FLOWHOOK_POLL_WAIT": "1", **settings}
    workers = WorkerPool(server.url, package, log=tmp_path / "workers.log", settings=settings)
    workers.start(1)
    environment = {**workers.environment, "WEB_CONCURRENCY": "1"}
    return Stack(
        server,
        Redis.from_url(server.url),
        workers,
        [start_web(tmp_path, f"web{number}", environment) for number in range(1, webs + 1)],
    )


def stop_stack(stack: Stack) -> None:
    for process, _ in stack.webs:
        stop_tree(process)
    stack.workers.stop()
    stack.redis.close()
    stack.redis_server.stop()


@pytest.fixture
def test_stack(tmp_path: Path) -> Iterator[Stack]:
    """The test handlers, one worker, one web process."""
    stack = start_stack(tmp_path, "tests.handlers")
    yield stack
    stop_stack(stack)


def timed_post(url: str, handler: str, instance: str, variables: dict[str, str]) -> tuple[dict[str, str], float]:
    started = time.monotonic()
    answer = post(url, handler, instance, variables)
    return answer, time.monotonic() - started


def poll_until_over(
    url: str, handler: str, instance: str, answer: dict[str, str], within: float = 30
) -> dict[str, str]:
    """Poll as the flow's loop does until the answer is no longer pending."""
    return waiting.poll_until_over(
        lambda name, sent: post(url, name, instance, sent), handler, {}, answer, timeout=within
    )


def test_while_redis_is_away_calls_keep_trying_within_their_budget_and_the_flows_loop_carries_them(
    tmp_path: Path,
) -> None:
    stack = start_stack(tmp_path, "tests.handlers", FLOWHOOK_OUTAGE_LIMIT="5")
    url = stack.url
    key = uuid.uuid4().hex
    try:
        pending = post(url, "gated", "outage-1", {"gate": "outage"})
        assert pending["gated_status"] == "pending"
        stack.redis_server.stop()
        away_since = time.monotonic()

        # New work that cannot be handed to Redis within the budget (1 s) is pending with no job, at
        # the budget's end: the flow's loop calls again at once, and that call starts the work.
        unstarted, took = timed_post(url, "napping", "outage-2", {"key": key, "seconds": "0"})
        assert (unstarted["napping_status"], unstarted["napping_job"], unstarted["napping_next"]) == (
            "pending",
            "",
            "poll",
        )
        assert 0.9 < took < 2.0
        # A poll's job is in Redis: pending, the same job, and the flow polls again.
        poll, took = timed_post(url, "gated", "outage-1", {"gate": "outage", **pending})
        assert (poll["gated_status"], poll["gated_job"]) == ("pending", pending["gated_job"])
        assert 0.9 < took < 2.0
        # A `web` handler needs no Redis: it still answers.
        assert post(url, "quick", "outage-3", {})["quick_status"] == "done"
        ready = requests.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["missing"] == ["redis"]
        # Away longer than FLOWHOOK_OUTAGE_LIMIT: a flow must not poll forever, nor call again forever.
        time.sleep(max(0.0, 5.2 - (time.monotonic() - away_since)))
        poll = post(url, "gated", "outage-1", {"gate": "outage", **pending})
        assert (poll["gated_status"], poll["gated_error"], poll["gated_job"]) == ("failed", UNAVAILABLE, "")
        answer, took = timed_post(url, "gated", "outage-4", {"gate": "never"})
        assert (answer["gated_status"], answer["gated_error"], answer["gated_job"]) == ("failed", UNAVAILABLE, "")
        assert took < 2.0

        stack.redis_server.start()  # same port, nothing kept: a new, empty Redis
        # The flow's next call, once Redis is back, starts the work and is answered done.
        done = post(url, "napping", "outage-2", {"key": key, "seconds": "0", **unstarted})
        assert done["napping_status"] == "done", done
        assert runs(stack.redis, key) == 1
        waiting.wait_until(
            lambda: post(url, "kept", "outage-5", {})["kept_status"] == "done", 30, "no recovery", interval=0.2
        )
        # The worker signs in again at its next heartbeat (every second): the new Redis forgot it.
        waiting.wait_until(
            lambda: requests.get(f"{url}/readyz", timeout=5).status_code == 200,
            5,
            "the worker did not register again",
            interval=0.2,
        )
    finally:
        stop_stack(stack)
    # One line when Redis went away and one when it came back, not one per call.
    web_log = (tmp_path / "web1.log").read_text()
    assert web_log.count("Redis unavailable") == 1
    assert web_log.count("Redis back after") == 1


def test_a_job_that_finishes_while_redis_is_away_is_answered_done_once_it_is_back(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, "tests.handlers", appendonly=True)
    key = uuid.uuid4().hex
    variables = {"key": key, "seconds": "2"}
    try:
        pending = post(stack.url, "napping", "finished-away", variables)
        assert pending["napping_status"] == "pending"  # it runs, 2 s, past its 1 s budget
        stack.redis_server.stop()  # as `docker compose restart redis` would: SIGTERM, data kept
        poll, took = timed_post(stack.url, "napping", "finished-away", {**variables, **pending})
        assert (poll["napping_status"], poll["napping_job"]) == ("pending", pending["napping_job"])
        assert took < 2.0
        time.sleep(1.5)  # the job ends now, with Redis away: the worker holds its outcome
        stack.redis_server.start()
        done = poll_until_over(stack.url, "napping", "finished-away", {**variables, **pending})
        assert done["napping_status"] == "done", done  # not "interrupted"
        assert done["runs"] == "1"
        assert runs(stack.redis, key) == 1
    finally:
        stop_stack(stack)
    log = (tmp_path / "workers.log").read_text()
    assert log.count("Redis unavailable") == 1
    assert log.count("Redis back after") == 1
    assert "outcome is lost" not in log


def test_the_workers_take_jobs_again_within_a_second_or_so_of_redis_coming_back(test_stack: Stack) -> None:
    """RQ would wait ever longer between attempts to reconnect (1, 2, 4, ... 60 s): after 20 s away,
    Redis would be back for up to 11 s before an idle worker took a job. Flowhook's try every second."""
    test_stack.redis_server.stop()
    time.sleep(20)
    test_stack.redis_server.start()
    back = time.monotonic()
    answer = post(test_stack.url, "kept", "back-1", {})  # the web tries Redis within the budget
    answer = poll_until_over(test_stack.url, "kept", "back-1", answer)
    assert answer["kept_status"] == "done", answer
    assert time.monotonic() - back < 3


def test_a_redis_that_hangs_answers_new_work_pending_with_no_job_at_the_end_of_its_budget(test_stack: Stack) -> None:
    url = test_stack.url
    assert post(url, "kept", "hang-1", {})["kept_status"] == "done"  # the pool's connections are open
    redis_process = test_stack.redis_server.process
    assert redis_process is not None
    redis_process.send_signal(signal.SIGSTOP)  # a paused Redis: connections open, no answers
    try:
        answer, took = timed_post(url, "gated", "hang-2", {"gate": "never"})
        assert (answer["gated_status"], answer["gated_job"], answer["gated_error"]) == ("pending", "", "")
        assert took < 1 + 1.0  # its budget, plus at most one command's timeout
        assert requests.get(f"{url}/readyz", timeout=5).status_code == 503
    finally:
        redis_process.send_signal(signal.SIGCONT)
    assert post(url, "kept", "hang-3", {})["kept_status"] == "done"


def test_an_idle_keep_alive_connection_is_kept_longer_than_a_proxy_keeps_it(test_stack: Stack) -> None:
    """gunicorn's own 2 s would close it under a proxy that reuses it (nginx, cloud balancers: 60 s)."""
    host, port = test_stack.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    body = json.dumps({"process_instance_id": "keep-alive", "variables": {}})
    try:
        opened = None
        for turn in range(3):
            if turn:
                time.sleep(3)  # idle, as between two turns of a chat
            connection.request("POST", "/webservice/quick", body, {"Content-Type": "application/json"})
            response = connection.getresponse()  # a connection gunicorn closed meanwhile fails here
            response.read()
            assert response.status == 200
            opened = opened or connection.sock
            assert connection.sock is opened  # the same connection, every time
    finally:
        connection.close()


def test_queued_and_running_jobs_survive_a_redis_restart_with_its_append_only_file(tmp_path: Path) -> None:
    # One job at a time: one runs while two wait in the queue.
    stack = start_stack(tmp_path, "handlers", appendonly=True, FLOWHOOK_BUDGET="1", FLOWHOOK_WORKER_CONCURRENCY="1")
    try:
        seconds = {"restart-1": "5", "restart-2": "1", "restart-3": "1"}
        pending = {instance: post(stack.url, "sleep", instance, {"seconds": s}) for instance, s in seconds.items()}
        assert {answer["sleep_status"] for answer in pending.values()} == {"pending"}
        assert Queue(f"{stack.workers.queue}.sleep", connection=stack.redis).count == 2  # its one slot is busy

        stack.redis_server.stop()  # as `docker compose restart redis` would: SIGTERM
        stack.redis_server.start()

        for instance, answer in pending.items():
            done = poll_until_over(stack.url, "sleep", instance, answer)
            assert done["sleep_status"] == "done", done
            assert done["slept"] == seconds[instance]
    finally:
        stop_stack(stack)


def test_a_resend_storm_runs_the_work_once(test_stack: Stack) -> None:
    gate = uuid.uuid4().hex
    together = threading.Barrier(50)

    def resend(_: int) -> dict[str, str]:
        together.wait()
        return post(test_stack.url, "gated", "storm", {"gate": gate})

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(resend, range(50)))
    assert {answer["gated_status"] for answer in answers} == {"pending"}
    job_ids = {answer["gated_job"] for answer in answers}
    assert len(job_ids) == 1
    open_gate(test_stack.redis, gate)
    done = poll_until_over(test_stack.url, "gated", "storm", {"gate": gate, **answers[0]})
    assert done["gated_status"] == "done"
    assert done["key"] in job_ids
    assert runs(test_stack.redis, gate) == 1


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL gunicorn's master and its workers at once: calls in flight get no answer."""
    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    for member in tree:
        member.kill()
    psutil.wait_procs(tree, timeout=10)


def test_calls_waiting_on_a_killed_web_process_are_picked_up_through_another(tmp_path: Path) -> None:
    # A long budget: the calls are still waiting when their web process is killed.
    stack = start_stack(tmp_path, "tests.handlers", webs=2, FLOWHOOK_BUDGET="3")
    (doomed, _), (_, survivor) = stack.webs
    gates = [uuid.uuid4().hex for _ in range(3)]
    try:
        with ThreadPoolExecutor(len(gates)) as pool:
            calls = [pool.submit(post, stack.webs[0][1], "waiting", f"killed-{gate}", {"gate": gate}) for gate in gates]
            queue = Queue(f"{stack.workers.queue}.waiting", connection=stack.redis)
            waiting.wait_until(
                lambda: queue.count + queue.started_job_registry.count >= len(gates),
                10,
                "the calls did not start their jobs",
            )
            kill_tree(doomed)
            for call in calls:
                with pytest.raises(requests.ConnectionError):
                    call.result()

        # LoyJoy resends the same call; it finds the job the dead process started.
        with ThreadPoolExecutor(len(gates)) as pool:
            resent = list(pool.map(lambda gate: post(survivor, "waiting", f"killed-{gate}", {"gate": gate}), gates))
        assert {answer["waiting_status"] for answer in resent} == {"pending"}
        for gate in gates:
            open_gate(stack.redis, gate)
        for gate, answer in zip(gates, resent, strict=True):
            done = poll_until_over(survivor, "waiting", f"killed-{gate}", {"gate": gate, **answer})
            assert done["waiting_status"] == "done"
            assert runs(stack.redis, gate) == 1
    finally:
        stop_stack(stack)


def test_a_web_handlers_hand_off_outlives_the_web_process_that_made_it(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, "tests.handlers", webs=2)
    (doomed, first), (_, survivor) = stack.webs
    case = uuid.uuid4().hex
    try:
        pending = post(first, "inline_overrun", "handoff", {"case": case, "gate": "true"})
        assert pending["inline_overrun_status"] == "pending"
        kill_tree(doomed)
        stack.redis.rpush(f"test:gate:{case}", "open")
        done = poll_until_over(survivor, "inline_overrun", "handoff", {"case": case, "gate": "true", **pending})
        assert done["inline_overrun_status"] == "done"
        assert done["ran_in"] == "worker"
    finally:
        stop_stack(stack)
