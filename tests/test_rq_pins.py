"""What Flowhook's workers rely on in RQ: these fail when an RQ release changes it.

The pool worker overrides or calls these RQ methods with these parameters (workers/pool.py,
workers/base.py, workers/heartbeat.py, workers/timeouts.py); a renamed or reordered parameter
would make it pass the wrong values silently. What RQ does with them is pinned by the behaviour
tests (tests/test_concurrency.py: timeouts, heartbeats, the intermediate queue, outcomes).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest
from rq.executions import Execution
from rq.queue import Queue
from rq.scheduler import RQScheduler
from rq.scheduler import run as run_scheduler
from rq.timeouts import BaseDeathPenalty
from rq.worker.base import BaseWorker

PINNED: list[tuple[Callable[..., Any], list[str]]] = [
    (
        BaseWorker.work,
        [
            "self",
            "burst",
            "logging_level",
            "date_format",
            "log_format",
            "max_jobs",
            "max_idle_time",
            "with_scheduler",
            "dequeue_strategy",
        ],
    ),
    (BaseWorker.bootstrap, ["self", "logging_level", "date_format", "log_format"]),
    (BaseWorker._start_scheduler, ["self", "burst", "logging_level", "date_format", "log_format"]),
    (BaseWorker.prepare_job_execution, ["self", "job", "remove_from_intermediate_queue"]),
    (BaseWorker.prepare_execution, ["self", "job"]),
    (BaseWorker.perform_job, ["self", "job", "queue"]),
    (BaseWorker.handle_exception, ["self", "job", "exc_info"]),
    (BaseWorker.heartbeat, ["self", "timeout", "pipeline"]),
    (BaseWorker._set_connection, ["self", "connection"]),
    (BaseWorker._install_signal_handlers, ["self"]),
    (BaseWorker._pubsub_exception_handler, ["self", "exc", "pubsub", "pubsub_thread"]),
    (
        RQScheduler.__init__,
        [
            "self",
            "queues",
            "connection",
            "interval",
            "logging_level",
            "date_format",
            "log_format",
            "serializer",
            "name",
        ],
    ),
    (run_scheduler, ["scheduler"]),
    (Queue.dequeue_any, ["queues", "timeout", "connection", "job_class", "serializer", "death_penalty_class"]),
    (Queue.push_job_id, ["self", "job_id", "pipeline", "at_front"]),
    (Execution.heartbeat, ["self", "started_job_registry", "ttl", "pipeline"]),
    (BaseDeathPenalty.__init__, ["self", "timeout", "exception", "kwargs"]),
]


@pytest.mark.parametrize(("method", "parameters"), PINNED, ids=[method.__qualname__ for method, _ in PINNED])
def test_rq_keeps_the_signature_flowhook_relies_on(method: Callable[..., Any], parameters: list[str]) -> None:
    assert list(inspect.signature(method).parameters) == parameters


def test_rq_keeps_the_running_execution_in_one_worker_attribute() -> None:
    """The pool worker makes ``execution`` greenlet-local; RQ must still read and write it there."""
    for method in (BaseWorker.handle_job_success, BaseWorker.handle_job_failure):
        assert "self.execution" in inspect.getsource(method)
    assert "worker.execution = " in inspect.getsource(inspect.getmodule(Execution))  # type: ignore[arg-type]


def test_rq_times_a_job_with_its_death_penalty_class() -> None:
    """The pool worker times each job by giving RQ a death penalty class of its own."""
    assert "with self.death_penalty_class(timeout, JobTimeoutException, job_id=job.id)" in inspect.getsource(
        BaseWorker.perform_job
    )


def test_rq_watches_and_stops_its_scheduler_through_what_scheduler_process_has() -> None:
    """workers/scheduler.py runs the scheduler as a subprocess; RQ must use no more of it than that."""
    uses = set(re.findall(r"scheduler\._process\.(\w+)", inspect.getsource(inspect.getmodule(BaseWorker))))  # type: ignore[arg-type]
    uses |= set(re.findall(r"self\._process\.(\w+)", inspect.getsource(RQScheduler.acquire_locks)))  # start is ours
    assert uses <= {"pid", "is_alive", "join"}


def test_rq_writes_a_workers_record_as_register_again_does() -> None:
    """workers/base.py re-registers a forgotten worker with RQ's own writes, minus RQ's refusal."""
    source = inspect.getsource(BaseWorker.register_birth)
    for write in (
        "pipeline.delete(key)",
        "pipeline.hset(key, mapping=self.serialize())",
        "worker_registration.register(self, pipeline)",
        "pipeline.expire(key, self.worker_ttl + 60)",
    ):
        assert write in source


def test_rq_takes_a_job_off_the_intermediate_queue_only_for_a_single_queue() -> None:
    """Why the pool worker, which dequeues each of its queues alone, always asks for it."""
    assert "remove_from_intermediate_queue = len(self.queues) == 1" in inspect.getsource(BaseWorker.perform_job)
