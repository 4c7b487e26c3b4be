"""``async def handle``: many at once without blocking each other, inline in the web and in workers.

One asyncio event loop per process, in a thread of its own (flowhook/coroutines.py); each call
waits for its coroutine where it is, a greenlet yielding to the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from redis import Redis

from app import create_app
from flowhook.dev.redis_server import free_port
from flowhook.dev.testing import run
from flowhook.exceptions import RetryableError
from tests.conftest import ROOT, StartWorkers, caller
from tests.test_concurrency import at_once, conversations
from tests.test_e2e import stop_tree, wait_for_log
from tests.waiting import poll_until_over, wait_until

# Under gevent, as gunicorn's worker and the pool worker patch it: what asyncio does per greenlet.
UNDER_GEVENT = """
from gevent import monkey; monkey.patch_all()
import asyncio, contextvars, json, time, gevent
from flowhook.call import make_call
from flowhook.coroutines import run_coroutine
from flowhook.registry import discover
from flowhook.settings import Settings

async def nap():
    await asyncio.sleep(0.5)

def own_loop():
    try:
        asyncio.run(nap())
        return "ran"
    except RuntimeError as error:
        return str(error)

# A loop per greenlet: asyncio keeps the running loop per thread, so the second greenlet meets the first's.
greenlets = [gevent.spawn(own_loop) for _ in range(2)]
gevent.joinall(greenlets)
own = [greenlet.value for greenlet in greenlets]

handler = discover(Settings(handlers_package="tests.handlers"))["async_nap"]
reported = []
trace = contextvars.ContextVar("trace")  # as flowhook/logs.py keeps a job's trace id

async def traced(call):
    return trace.get()

def call_handler(number):
    call = make_call(handler, {"process_instance_id": str(number), "variables": {"seconds": 1}},
                     idempotency_key=str(number), deadline=time.monotonic() + 10, report_progress=reported.append)
    trace.set(f"trace-{number}")
    return {**handler.run(call), "trace": run_coroutine(traced, call)}

ticks = 0
def tick():
    global ticks
    while True:
        gevent.sleep(0.01)
        ticks += 1

ticker = gevent.spawn(tick)
started = time.monotonic()
greenlets = [gevent.spawn(call_handler, number) for number in range(20)]
gevent.joinall(greenlets)
answers = [greenlet.value for greenlet in greenlets]
took = time.monotonic() - started
print(json.dumps({"own": own, "answers": answers, "took": took, "ticks": ticks, "reported": reported}))
"""


def test_under_gevent_twenty_async_calls_share_one_loop_and_leave_the_greenlets_running() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", UNDER_GEVENT], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(finished.stdout)
    # Why one loop in a thread of its own: a loop per greenlet fails for every greenlet but the first.
    assert seen["own"] == ["ran", "asyncio.run() cannot be called from a running event loop"]
    assert [answer["key"] for answer in seen["answers"]] == [str(number) for number in range(20)]
    # Each coroutine saw its caller's context variables (a job's trace id for its log lines).
    assert [answer["trace"] for answer in seen["answers"]] == [f"trace-{number}" for number in range(20)]
    assert seen["took"] < 1.8  # 20 naps of 1 s, at once
    assert seen["ticks"] > 50  # meanwhile another greenlet ran every 10 ms or so
    assert seen["reported"] == ["napping"] * 20  # progress from async code reached the caller's greenlet


def test_an_async_handler_runs_in_a_handlers_test_as_in_a_worker() -> None:
    progress: list[str] = []
    answer = run("async_nap", {"seconds": "0.01"}, package="tests.handlers", progress=progress)
    assert answer["slept"] == "0.01"
    assert progress == ["napping"]


def test_what_an_async_handler_raises_reaches_the_caller_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So a RetryableError is retried and a HandlerError's reason is the flow's, as for a plain handler."""
    name = f"raising_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "crm.py").write_text(
        "from flowhook import RetryableError\n\nasync def handle(call):\n    raise RetryableError('the CRM is busy')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RetryableError, match="the CRM is busy"):
        run("crm", {}, package=name)


@pytest.fixture
def web(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """gunicorn (its gevent worker, one process) serving the test handlers; inline calls need no worker."""
    port = free_port()
    log = tmp_path / "web.log"
    environment = {
        **os.environ,
        "REDIS_URL": redis_url,
        "FLOWHOOK_HANDLERS": "tests.handlers",
        "FLOWHOOK_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_log(log, "Booting worker")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_tree(process)


@pytest.mark.e2e
def test_twenty_async_calls_at_once_are_all_done_inline_in_one_web_process(web: str) -> None:
    def call(number: int) -> dict[str, str]:
        body = {"process_instance_id": f"web-{number}", "variables": {"seconds": "2"}}
        response = requests.post(f"{web}/webservice/async_web_nap", json=body, timeout=10)
        assert response.status_code == 200, response.text
        variables: dict[str, str] = response.json()["data"]["variables"]
        return variables

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as threads:
        answers = list(threads.map(call, range(20)))
    took = time.monotonic() - started
    assert [(answer["async_web_nap_status"], answer["async_web_nap_job"]) for answer in answers] == [("done", "")] * 20
    assert took < 4  # one after the other, 40 s; each within its 3.5 s budget, inline


@pytest.mark.e2e
def test_an_async_attempt_past_its_budget_is_cancelled_and_handed_to_a_worker(web: str, redis: Redis) -> None:
    key = uuid.uuid4().hex
    body = {"process_instance_id": f"web-{key}", "variables": {"key": key}}
    started = time.monotonic()
    response = requests.post(f"{web}/webservice/async_web_overrun", json=body, timeout=10)
    assert response.json()["data"]["variables"]["async_web_overrun_status"] == "pending"
    assert time.monotonic() - started < 2  # its 0.5 s budget, not the 30 s it would sleep
    wait_until(lambda: redis.get(f"test:cancelled:{key}"), 5, "the inline attempt was not cancelled")


def test_under_a_threaded_server_an_async_attempt_past_its_budget_is_cancelled(
    redis_url: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)  # where the handler notes its cancellation
    # No worker serves this queue: the handed-over job waits, and only the inline attempt ran.
    settings = {"REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.handlers", "FLOWHOOK_QUEUE": uuid.uuid4().hex}
    call = caller(create_app({"TESTING": True, **settings}).test_client(), f"threads-{uuid.uuid4().hex}")
    key = uuid.uuid4().hex
    assert call("async_web_overrun", {"key": key})["async_web_overrun_status"] == "pending"
    wait_until(lambda: redis.get(f"test:cancelled:{key}"), 5, "the inline attempt was not cancelled")


@pytest.mark.slow
def test_twenty_async_jobs_at_once_are_all_done_inline_by_one_pool_worker(
    start_workers: StartWorkers, redis_url: str
) -> None:
    pool = start_workers(1)
    calls = conversations(redis_url, pool, 20)
    started = time.monotonic()
    answers = at_once(calls, "async_nap", {"seconds": "2"})
    took = time.monotonic() - started
    assert [answer["async_nap_status"] for answer in answers] == ["done"] * 20
    assert took < 4  # within the 3.5 s budget: the worker ran all 20 at once
    assert len({answer["key"] for answer in answers}) == 20  # each its own job


@pytest.mark.slow
def test_an_async_jobs_progress_is_in_its_pending_answer(start_workers: StartWorkers, redis_url: str) -> None:
    pool = start_workers(1)
    (call,) = conversations(redis_url, pool, 1)
    answer = call("async_nap", {"seconds": "4.5"})  # past its 3.5 s budget
    assert (answer["async_nap_status"], answer["async_nap_progress"]) == ("pending", "napping")
    answer = poll_until_over(call, "async_nap", {"seconds": "4.5"}, answer)
    assert (answer["async_nap_status"], answer["slept"]) == ("done", "4.5")


@pytest.mark.slow
@pytest.mark.parametrize("worker_class", ["pool", "simple", "fork"])
def test_a_job_timeout_cancels_an_async_handler(
    worker_class: str, start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1, FLOWHOOK_WORKER_CLASS=worker_class)
    (call,) = conversations(redis_url, pool, 1)
    key = uuid.uuid4().hex
    answer = poll_until_over(call, "async_overrun", {"key": key}, call("async_overrun", {"key": key}))
    assert answer["async_overrun_status"] == "failed"
    assert answer["async_overrun_error"] == "the work took longer than its 1 s limit"
    # The coroutine itself was stopped (asyncio.CancelledError at its await), not left sleeping.
    wait_until(lambda: redis.get(f"test:cancelled:{key}"), 5, "the async handler was not cancelled")
