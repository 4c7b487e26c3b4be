"""Workers that die or overrun: every call still ends in an answer the flow can branch on."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from typing import cast

import psutil
import pytest
from redis import Redis
from rq import Queue, Worker

from app import create_app
from flowhook import defaults
from flowhook.connection import HandlerQueue
from flowhook.contract import INTERRUPTED
from tests.conftest import CallFunction, StartWorkers, WorkerPool, caller
from tests.test_worker_path import open_gate, runs
from tests.waiting import poll_until_over, wait_until
from workers.__main__ import main as start_worker
from workers.classes import SimpleWorker

# The promise (docs/operations.md): within FLOWHOOK_HEARTBEAT_TTL (20 s) of a worker's death, its job's next
# poll answers "interrupted". The next poll may come a budget (5 s) after the heartbeat expired;
# a few seconds more for a loaded machine.
HEARTBEAT_TTL = 20.0
BUDGET = 5.0
WITHIN = HEARTBEAT_TTL + BUDGET + 4.0
# A short job heartbeat, so that the tests of other faults than the headline one run in seconds.
SHORT_HEARTBEAT = {"FLOWHOOK_HEARTBEAT_TTL": "4"}


pytestmark = [pytest.mark.workers, pytest.mark.slow]  # heartbeats expire, workers are killed and restarted


def flow(redis_url: str, pool: WorkerPool) -> CallFunction:
    """A conversation of its own with the web app serving ``pool``'s queue."""
    app = create_app(
        {"TESTING": True, "REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.handlers", "FLOWHOOK_QUEUE": pool.queue}
    )
    return caller(app.test_client(), f"conv-{uuid.uuid4().hex}")


def process_of(redis: Redis, gate: str) -> int:
    """The process running the `gated` job of ``gate``, once it has started."""
    key = f"test:pid:{gate}"
    pid: bytes = wait_until(lambda: cast(bytes | None, redis.get(key)), 10, "the gated job did not start")
    return int(pid)


def kill_with_children(pid: int) -> None:
    """SIGKILL a process and its children (a worker's scheduler and work horse), as a crash would."""
    process = psutil.Process(pid)
    for victim in [process, *process.children(recursive=True)]:
        victim.kill()
    psutil.wait_procs([process], timeout=10)


def test_a_killed_workers_job_is_answered_interrupted_within_its_heartbeat_ttl(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1)  # the default heartbeat, as deployed; no other worker to notice
    call = flow(redis_url, pool)
    variables = {"gate": uuid.uuid4().hex}
    answer = call("gated", variables)
    assert answer["gated_status"] == "pending"
    kill_with_children(process_of(redis, variables["gate"]))
    killed = time.monotonic()

    answer = poll_until_over(call, "gated", variables, answer, timeout=WITHIN)
    took = time.monotonic() - killed
    assert (answer["gated_status"], answer["gated_error"]) == ("failed", INTERRUPTED)
    # Not before the heartbeat could have expired (a heartbeat goes every quarter of it): the job
    # was not failed by anything but its silence.
    assert took > HEARTBEAT_TTL * 3 / 4 - 1, took
    assert runs(redis, variables["gate"]) == 1


def test_a_killed_workers_job_runs_again_when_its_handler_allows_a_retry(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1, **SHORT_HEARTBEAT)
    call = flow(redis_url, pool)
    gate = uuid.uuid4().hex
    first = call("gated_retried", {"gate": gate})
    kill_with_children(process_of(redis, gate))
    pool.start(1)  # the replacement a supervisor would start

    # The flow polls on meanwhile: every answer is pending (never "interrupted") until it runs again.
    answers = [first]

    def polled_and_ran_again() -> bool:
        answers.append(call("gated_retried", {"gate": gate, **answers[-1]}))
        return runs(redis, gate) >= 2

    # The 4 s heartbeat, the poll that reaps it, the poll that sees it run: the promise and a few seconds.
    wait_until(polled_and_ran_again, 4 + 2 * BUDGET + 4, "the job did not run again", interval=0)
    assert {answer["gated_retried_status"] for answer in answers} == {"pending"}, answers
    assert {answer["gated_retried_job"] for answer in answers} == {first["gated_retried_job"]}
    open_gate(redis, gate)
    done = poll_until_over(call, "gated_retried", {"gate": gate}, answers[-1])
    assert done["gated_retried_status"] == "done"
    assert done["runs"] == "2"
    assert done["key"] == first["gated_retried_job"]  # the same job, run again


@pytest.mark.parametrize("worker_class", ["pool", "simple", "fork"])
def test_a_handler_that_ends_its_process_is_answered_interrupted(
    start_workers: StartWorkers, redis_url: str, worker_class: str
) -> None:
    pool = start_workers(1, FLOWHOOK_WORKER_CLASS=worker_class, **SHORT_HEARTBEAT)
    call = flow(redis_url, pool)
    answer = poll_until_over(call, "dying", {})
    assert (answer["dying_status"], answer["dying_error"]) == ("failed", INTERRUPTED)


def test_a_fork_workers_job_is_answered_interrupted_when_worker_and_work_horse_are_killed(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(1, FLOWHOOK_WORKER_CLASS="fork", **SHORT_HEARTBEAT)
    call = flow(redis_url, pool)
    variables = {"gate": uuid.uuid4().hex}
    answer = call("gated", variables)
    work_horse = process_of(redis, variables["gate"])
    assert work_horse != pool.processes[0].pid
    kill_with_children(pool.processes[0].pid)

    answer = poll_until_over(call, "gated", variables, answer)
    assert (answer["gated_status"], answer["gated_error"]) == ("failed", INTERRUPTED)


def test_a_fork_workers_job_over_its_timeout_fails_with_the_reason(start_workers: StartWorkers, redis_url: str) -> None:
    pool = start_workers(1, FLOWHOOK_WORKER_CLASS="fork")
    call = flow(redis_url, pool)
    answer = poll_until_over(call, "overrun", {})
    assert answer["overrun_status"] == "failed"
    assert answer["overrun_error"] == "the work took longer than its 1 s limit"


def test_a_fork_worker_waits_out_a_job_longer_than_its_monitoring_interval(
    start_workers: StartWorkers, redis_url: str
) -> None:
    """RQ times the fork worker's wait for its work horse with the death penalty class too (every
    quarter of the heartbeat TTL, here 1 s): that wait must not end as the job's timeout."""
    pool = start_workers(1, FLOWHOOK_WORKER_CLASS="fork", **SHORT_HEARTBEAT)
    call = flow(redis_url, pool)
    for _ in range(2):  # the worker is still there for the next job
        answer = poll_until_over(call, "sleepy", {"seconds": "1.6"})
        assert (answer["sleepy_status"], answer["slept"]) == ("done", "1.6")


def test_with_no_poll_a_live_worker_reaps_a_dead_workers_job(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    pool = start_workers(2, **SHORT_HEARTBEAT)
    call = flow(redis_url, pool)
    gate = uuid.uuid4().hex
    job_id = call("gated", {"gate": gate})["gated_job"]
    kill_with_children(process_of(redis, gate))
    # Nobody polls: the surviving worker's registry maintenance ends the job all the same.
    # Within the short heartbeat and the survivor's next maintenance run, and a few seconds.
    within = 4 + defaults.MAINTENANCE_INTERVAL + 4
    wait_until(lambda: redis.hget(f"rq:job:{job_id}", "status") == b"failed", within, "the job was not reaped")


def test_a_worker_restarted_in_its_container_starts_under_its_killed_predecessors_name(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restarted by its container's restart policy, a worker has the killed one's host name and pid (1)
    while the killed one's registration is still fresh; it starts at once instead of crash-looping."""
    queue = f"restarted-{uuid.uuid4().hex[:8]}"
    # In this process, so that it has the pid: a class that leaves the process unpatched by gevent.
    settings = {
        "REDIS_URL": redis_url,
        "FLOWHOOK_HANDLERS": "tests.handlers",
        "FLOWHOOK_QUEUE": queue,
        "FLOWHOOK_WORKER_CLASS": "simple",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with Redis.from_url(redis_url) as connection:
        killed = Worker(
            [Queue(queue, connection=connection)], name=f"{socket.gethostname()}.{os.getpid()}", connection=connection
        )
        killed.register_birth()  # and then it was killed: it never registered its death
        assert start_worker(["--burst"]) == 0


def test_a_workers_scheduler_is_a_process_of_its_own_that_ends_with_its_worker(start_workers: StartWorkers) -> None:
    """Not a fork of the worker (which ran the worker's greenlets, and took jobs, after an outage);
    and not an orphan holding the scheduler locks when its worker is killed."""
    pool = start_workers(1)
    worker = psutil.Process(pool.processes[0].pid)
    scheduler = wait_until(
        lambda: next((child for child in worker.children() if "workers.scheduler" in child.cmdline()), None),
        10,
        "the worker started no scheduler",
    )
    assert scheduler.cmdline()[1:4] == ["-m", "workers.scheduler", f"--worker={worker.pid}"]
    worker.kill()
    gone, _ = psutil.wait_procs([scheduler], timeout=10)
    assert gone, "the scheduler outlived its killed worker"


def test_a_worker_forgotten_by_redis_signs_in_again_though_its_job_heartbeat_writes_meanwhile(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a Redis restart the job heartbeat thread renews the worker's record at any moment,
    leaving a record with no birth; the worker must still sign in again (RQ's register_birth
    refuses while such a record is there)."""
    queue = Queue(f"forgotten-{uuid.uuid4().hex[:8]}", connection=redis)
    worker = SimpleWorker([queue], connection=redis)
    beat = "2026-01-01T00:00:00.000000Z"  # the heartbeat a job's beat writes
    redis.hset(worker.key, "last_heartbeat", beat)
    redis.expire(worker.key, 60)
    delete = redis.delete

    def delete_as_a_beat_comes(*names: str) -> int:
        deleted = delete(*names)
        redis.hset(worker.key, "last_heartbeat", beat)  # the heartbeat thread, right after any delete
        return deleted

    monkeypatch.setattr(redis, "delete", delete_as_a_beat_comes)
    try:
        worker.heartbeat()
        assert redis.hexists(worker.key, "birth")
        assert worker.key.encode() in redis.smembers(f"rq:workers:{queue.name}")
        assert redis.ttl(worker.key) > 0
    finally:
        monkeypatch.undo()
        redis.delete(worker.key)
        redis.srem("rq:workers", worker.key)
        redis.srem(f"rq:workers:{queue.name}", worker.key)


def test_a_job_taken_but_never_started_is_queued_again_and_runs(redis_url: str, redis: Redis, tmp_path: Path) -> None:
    """A worker that died, or lost Redis's reply, between taking a job and starting it left it behind."""
    pool = WorkerPool(redis_url, "tests.handlers", log=tmp_path / "workers.log")
    call = flow(redis_url, pool)
    gate = uuid.uuid4().hex
    pending = call("gated", {"gate": gate})  # no worker yet: it waits in its queue
    queue = HandlerQueue(f"{pool.queue}.gated", connection=redis)
    redis.lmove(queue.key, queue.intermediate_queue_key)  # taken, as by a worker's BLMOVE, and never started
    seen = queue.intermediate_queue.get_first_seen_key(pending["gated_job"])
    redis.set(seen, time.time() - 60, ex=3600)  # and an earlier maintenance run saw it there a minute ago
    try:
        pool.start(1)  # its maintenance at start finds it
        open_gate(redis, gate)
        answer = poll_until_over(call, "gated", {"gate": gate}, pending)
        assert answer["gated_status"] == "done"  # run, not failed as "stuck"
        assert runs(redis, gate) == 1
        assert not redis.exists(seen)
    finally:
        pool.stop()
