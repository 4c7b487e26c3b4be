"""A pool worker's jobs as RQ's own tools see and steer them, and timeouts no handler can swallow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.command import send_stop_job_command
from rq.job import JobStatus
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend

from flowhook.contract import STOPPED
from tests.conftest import ROOT, StartWorkers, WorkerPool
from tests.test_worker_faults import flow, process_of
from tests.test_worker_path import open_gate, runs
from tests.waiting import poll_until_over, wait_until

pytestmark = pytest.mark.slow  # timeouts, graces and heartbeats run their seconds


def job_of(redis: Redis, pool: WorkerPool, gate: str) -> str:
    """The id of the running `gated` job waiting on ``gate``."""
    queue = Queue(f"{pool.queue}.gated", connection=redis, serializer=JSONSerializer)

    def running() -> str | None:
        for job_id in queue.started_job_registry.get_job_ids():
            job = queue.fetch_job(job_id)
            if job is not None and job.args[1]["variables"]["gate"] == gate:  # run_handler(name, payload)
                return str(job_id)
        return None

    found: str = wait_until(running, 10, "the gated job did not start")
    return found


@pytest.mark.parametrize("catches", ["exception", "everything"])
def test_a_handler_that_catches_its_timeout_is_ended_at_it_and_frees_its_slot(
    start_workers: StartWorkers, redis_url: str, catches: str
) -> None:
    pool = start_workers(1)
    call = flow(redis_url, pool)
    started = time.monotonic()
    over = poll_until_over(call, "stubborn", {"catches": catches, "seconds": "30"})
    took = time.monotonic() - started
    assert (over["stubborn_status"], over["stubborn_error"]) == ("failed", "the work took longer than its 1 s limit")
    # Its 1 s timeout; a handler that catches even BaseException is given JOB_END_GRACE (3 s) more.
    assert took < (2.5 if catches == "exception" else 5.5)
    # Its one slot (concurrency 1) is free again: the next call of the handler runs at once.
    assert poll_until_over(call, "stubborn", {"catches": catches})["stubborn_status"] == "done"
    if catches == "everything":
        assert pool.log is not None
        assert "the handler ignored its job's end (JobTimedOut)" in pool.log.read_text()


def test_rqs_worker_api_names_every_job_a_pool_worker_runs(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1)
    calls = [flow(redis_url, pool) for _ in range(4)]
    gates = [uuid.uuid4().hex for _ in calls]
    for call, gate in zip(calls, gates, strict=True):
        assert call("gated", {"gate": gate})["gated_status"] == "pending"
    job_ids = {job_of(redis, pool, gate) for gate in gates}
    (worker,) = [worker for worker in Worker.all(connection=redis) if worker.pid == pool.processes[0].pid]
    assert {execution.job_id for execution in worker.get_current_executions()} == job_ids
    wait_until(lambda: worker.refresh() or worker.get_state() == "busy", 5, "the worker never showed busy")
    for gate in gates:
        open_gate(redis, gate)
    wait_until(
        lambda: not worker.get_current_executions(refresh=True), 10, "finished jobs stayed in the worker's record"
    )


def test_stop_job_stops_exactly_that_job_and_its_flow_is_told(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1)
    calls = [flow(redis_url, pool) for _ in range(3)]
    gates = [uuid.uuid4().hex for _ in calls]
    answers = [call("gated", {"gate": gate}) for call, gate in zip(calls, gates, strict=True)]
    victim = job_of(redis, pool, gates[1])
    for gate in gates:
        process_of(redis, gate)  # all three running

    send_stop_job_command(redis, victim)

    stopped = poll_until_over(calls[1], "gated", {"gate": gates[1]}, answers[1])
    assert (stopped["gated_status"], stopped["gated_error"]) == ("failed", STOPPED)
    job = Queue(f"{pool.queue}.gated", connection=redis, serializer=JSONSerializer).fetch_job(victim)
    assert job is not None
    assert job.get_status() == JobStatus.STOPPED  # as RQ records a stopped job
    for index in (0, 2):  # the neighbours ran on
        open_gate(redis, gates[index])
        over = poll_until_over(calls[index], "gated", {"gate": gates[index]}, answers[index])
        assert over["gated_status"] == "done"
        assert runs(redis, gates[index]) == 1


def test_a_worker_started_while_suspended_takes_no_job_until_resumed(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1)
    pool.stop()  # a pool of its own queue, no worker yet
    pool.processes.clear()
    call = flow(redis_url, pool)
    suspend(redis)
    try:
        gate = uuid.uuid4().hex
        assert call("gated", {"gate": gate})["gated_status"] == "pending"
        pool.start(1)
        time.sleep(2)  # what the worker does in its first seconds is the point
        assert runs(redis, gate) == 0
    finally:
        resume(redis)
    open_gate(redis, gate)
    assert poll_until_over(call, "gated", {"gate": gate})["gated_status"] == "done"


def test_a_burst_worker_ends_only_when_nothing_is_queued_or_running(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1)
    pool.stop()
    pool.processes.clear()
    call = flow(redis_url, pool)
    variables = {"key": uuid.uuid4().hex, "failures": "1"}
    # Its first attempt fails with a RetryableError: the retry is queued as the attempt ends.
    first = call("flaky_now", variables)
    assert first["flaky_now_status"] == "pending"
    burst = subprocess.run(
        [sys.executable, "-m", "workers", "--burst"],
        cwd=ROOT,
        env={**pool.environment, "FLOWHOOK_WORKER_CLASS": "pool"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert burst.returncode == 0, burst.stderr.decode()
    over = poll_until_over(call, "flaky_now", variables, first, timeout=5)
    assert (over["flaky_now_status"], over["attempts"]) == ("done", "2")  # the retry ran in the same burst


def test_the_worker_check_fails_for_a_worker_that_stopped_beating(start_workers: StartWorkers) -> None:
    pool = start_workers(1)
    worker = pool.processes[0]

    def check() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "workers", "--check"],
            cwd=ROOT,
            env=pool.environment,
            capture_output=True,
            check=False,
        )

    assert check().returncode == 0
    os.killpg(worker.pid, signal.SIGSTOP)  # hung: registered, silent
    try:
        wait_until(lambda: check().returncode == 1, 30, "--check passed a worker silent past the liveness limit")
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    wait_until(lambda: check().returncode == 0, 20, "--check did not count the worker once it beat again")
