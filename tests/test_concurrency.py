"""A pool worker runs many jobs at once, each with its own timeout, heartbeat, slots and stop."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from redis import Redis

from flowhook.contract import INTERRUPTED
from tests.conftest import CallFunction, SlowBackend, StartWorkers, WorkerPool
from tests.test_e2e import wait_for_log
from tests.test_worker_faults import flow, kill_with_children, process_of
from tests.test_worker_path import open_gate, runs
from tests.waiting import poll_until_over

pytestmark = pytest.mark.slow  # jobs that run for seconds, heartbeats that expire


# A short job heartbeat, so that a dead worker's jobs are reaped in seconds.
SHORT_HEARTBEAT = {"FLOWHOOK_HEARTBEAT_TTL": "4"}


def conversations(redis_url: str, pool: WorkerPool, count: int) -> list[CallFunction]:
    """``count`` conversations of their own, each with a client of its own (for threads)."""
    return [flow(redis_url, pool) for _ in range(count)]


def at_once(calls: list[CallFunction], handler: str, variables: Mapping[str, object]) -> list[dict[str, str]]:
    """Make one call in every conversation at the same moment; their answers, in order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as threads:
        return list(threads.map(lambda call: call(handler, dict(variables)), calls))


def test_one_worker_waits_on_a_slow_back_end_for_many_conversations_at_once(
    start_workers: StartWorkers, redis_url: str, slow_backend: str
) -> None:
    pool = start_workers(1)
    calls = conversations(redis_url, pool, 20)
    started = time.monotonic()
    answers = at_once(calls, "backend", {"url": slow_backend, "seconds": "1.5"})
    took = time.monotonic() - started
    assert [answer["backend_status"] for answer in answers] == ["done"] * 20
    assert SlowBackend.most_in_flight == 20  # one at a time would have taken 30 s
    assert took < 4  # its budget: every call answered inline
    # Each job saw itself as RQ's current job, and its own idempotency key.
    assert all(answer["job"] == answer["key"] for answer in answers)
    assert len({answer["key"] for answer in answers}) == 20


def test_a_jobs_timeout_ends_that_job_and_leaves_its_neighbours_running(
    start_workers: StartWorkers, redis_url: str
) -> None:
    pool = start_workers(1)
    overrunning, neighbour = conversations(redis_url, pool, 2)
    over: dict[str, str] = {"seconds": "5"}  # past sleepy's 2 s job timeout
    beside: dict[str, str] = {"seconds": "1.5"}
    started = time.monotonic()
    first = overrunning("sleepy", over)
    second = neighbour("sleepy", beside)
    overran = poll_until_over(overrunning, "sleepy", over, first)
    finished = poll_until_over(neighbour, "sleepy", beside, second)
    assert overran["sleepy_status"] == "failed"
    assert overran["sleepy_error"] == "the work took longer than its 2 s limit"
    assert time.monotonic() - started < 4.5  # ended at its timeout, not when it would have finished
    assert (finished["sleepy_status"], finished["slept"]) == ("done", "1.5")


def test_every_job_of_a_killed_worker_is_answered_interrupted(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1, **SHORT_HEARTBEAT)
    calls = conversations(redis_url, pool, 8)
    gates = [uuid.uuid4().hex for _ in calls]
    answers = [call("gated", {"gate": gate}) for call, gate in zip(calls, gates, strict=True)]
    assert {answer["gated_status"] for answer in answers} == {"pending"}
    pids = {process_of(redis, gate) for gate in gates}
    assert pids == {pool.processes[0].pid}  # all eight in the one worker process
    kill_with_children(pool.processes[0].pid)
    for call, gate, answer in zip(calls, gates, answers, strict=True):
        over = poll_until_over(call, "gated", {"gate": gate}, answer)
        assert (over["gated_status"], over["gated_error"]) == ("failed", INTERRUPTED)
        assert runs(redis, gate) == 1


def test_sigterm_lets_running_jobs_finish_takes_no_new_one_and_a_second_signal_interrupts(
    start_workers: StartWorkers, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    pool = start_workers(1)
    worker = pool.processes[0]
    calls = conversations(redis_url, pool, 4)
    gates = [uuid.uuid4().hex for _ in calls]
    answers = [call("gated", {"gate": gate}) for call, gate in zip(calls, gates, strict=True)]
    for gate in gates:
        process_of(redis, gate)  # every job is running
    worker.send_signal(signal.SIGTERM)
    assert pool.log is not None
    wait_for_log(pool.log, "warm shut down requested")
    late_gate = uuid.uuid4().hex
    late = calls[0]("gated", {"gate": late_gate})
    assert late["gated_status"] == "pending"  # queued, not taken: the worker is stopping

    open_gate(redis, gates[0])
    open_gate(redis, gates[1])
    finished = [{"gate": gate} for gate in gates]
    for call, variables, answer in zip(calls[:2], finished[:2], answers[:2], strict=True):
        assert poll_until_over(call, "gated", variables, answer)["gated_status"] == "done"
    assert worker.poll() is None  # two jobs still run: the worker waits for them

    time.sleep(1.1)  # a signal within a second of the first counts as the same one
    worker.send_signal(signal.SIGTERM)
    for call, variables, answer in zip(calls[2:], finished[2:], answers[2:], strict=True):
        over = poll_until_over(call, "gated", variables, answer)
        assert (over["gated_status"], over["gated_error"]) == ("failed", INTERRUPTED)
    assert worker.wait(timeout=10) == 0
    assert runs(redis, late_gate) == 0
    log = pool.log.read_text() if pool.log else ""
    assert "warm shut down requested" in log
    assert "cold shut down: 2 running jobs interrupted" in log


def test_a_handler_with_its_slots_full_leaves_other_handlers_answering_inline(
    start_workers: StartWorkers, redis_url: str, redis: Redis, slow_backend: str
) -> None:
    pool = start_workers(1, FLOWHOOK_WORKER_CONCURRENCY="3")
    calls = conversations(redis_url, pool, 5)
    gates = [uuid.uuid4().hex for _ in calls]
    waiting = [call("gated", {"gate": gate}) for call, gate in zip(calls, gates, strict=True)]
    assert {answer["gated_status"] for answer in waiting} == {"pending"}
    assert sum(runs(redis, gate) for gate in gates) == 3  # its three slots are full, two jobs wait

    others = at_once(conversations(redis_url, pool, 10), "backend", {"url": slow_backend, "seconds": "0.1"})
    assert [answer["backend_status"] for answer in others] == ["done"] * 10  # through the worker, inline
    assert all(answer["job"] for answer in others)
    for gate in gates:
        open_gate(redis, gate)


def test_a_handlers_concurrency_bounds_what_its_back_end_sees(
    start_workers: StartWorkers, redis_url: str, slow_backend: str
) -> None:
    pool = start_workers(1)
    calls = conversations(redis_url, pool, 6)
    variables = {"url": slow_backend, "seconds": "0.5"}
    answers = at_once(calls, "fragile", variables)
    for call, answer in zip(calls, answers, strict=True):
        assert poll_until_over(call, "fragile", variables, answer)["fragile_status"] == "done"
    assert SlowBackend.most_in_flight == 2  # its SETTINGS say two at once, though six were waiting


def test_a_cpu_bound_handler_runs_beside_its_neighbours_without_stalling_them(
    start_workers: StartWorkers, redis_url: str
) -> None:
    pool = start_workers(1)
    crunching, napping = conversations(redis_url, pool, 2)
    computed = {"seconds": "3"}
    answer = crunching("crunch", computed)
    assert answer["crunch_status"] == "pending"
    started = time.monotonic()
    for _ in range(5):
        assert napping("sleepy", {"seconds": "0.05"})["sleepy_status"] == "done"  # inline, within 0.5 s
    assert time.monotonic() - started < 2.5  # five calls answered while it computes
    assert poll_until_over(crunching, "crunch", computed, answer)["crunch_status"] == "done"


def test_a_handler_that_holds_the_event_loop_is_named_and_its_neighbours_are_not_reaped(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1, **SHORT_HEARTBEAT)
    hogging, neighbour = conversations(redis_url, pool, 2)
    gate = uuid.uuid4().hex
    waiting = neighbour("gated", {"gate": gate})
    process_of(redis, gate)
    hogged = {"seconds": "7"}  # well past the 4 s heartbeat: only a heartbeat thread of its own survives it
    answer = hogging("hog", hogged)
    assert poll_until_over(hogging, "hog", hogged, answer)["hog_status"] == "done"
    open_gate(redis, gate)
    assert poll_until_over(neighbour, "gated", {"gate": gate}, waiting)["gated_status"] == "done"  # not "interrupted"
    log = pool.log.read_text() if pool.log else ""
    assert "handler hog (job " in log
    assert 'should set SETTINGS["cpu_bound"] = True' in log
