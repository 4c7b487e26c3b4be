"""Everything Flowhook takes from RQ beyond its documented use, in one place.

``RQ_SURFACE`` lists every method or attribute of RQ's classes that a class in ``workers/``
overrides, and every private name it uses, with the reason. The tests below fail when a worker
class overrides something not listed here, when RQ renames or reorders a parameter Flowhook passes
(which would make it pass the wrong values silently), when RQ stops doing what an override
relies on, or when RQ's enqueue writes what Flowhook's one-step enqueue (flowhook/dedupe.py) does
not. What RQ does with them is pinned by the behaviour tests (tests/test_concurrency.py,
tests/test_worker_path.py, tests/test_worker_faults.py). ``make test-rq-next`` runs these and the
worker tests on RQ's newest release.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis
from rq import SimpleWorker as RQSimpleWorker
from rq import Worker as RQForkWorker
from rq.executions import Execution
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.timeouts import BaseDeathPenalty, UnixSignalDeathPenalty
from rq.worker.base import BaseWorker

from flowhook.connection import HandlerQueue, UnstartedJobsRequeued
from flowhook.dedupe import enqueue_once
from workers.base import FlowhookWorker
from workers.classes import ForkWorker, SimpleWorker
from workers.pool import PoolWorker
from workers.timeouts import GeventDeathPenalty, SignalDeathPenalty

# (class, name) -> why Flowhook overrides it. Names starting with "_" are RQ's private ones.
RQ_SURFACE: dict[tuple[type, str], str] = {
    (FlowhookWorker, "__init__"): "takes heartbeat_ttl; the job monitoring interval is a quarter of it",
    (FlowhookWorker, "log_result_lifespan"): "no line per job about how long its result is kept",
    (FlowhookWorker, "exponential_backoff_factor"): "retry Redis every second, not after 1, 2, 4 ... 60 s",
    (FlowhookWorker, "dequeue_timeout"): "the one-at-a-time classes wait for a job in 1 s slices",
    (FlowhookWorker, "connection_timeout"): "RQ keeps the short read timeouts of Flowhook's connections",
    (FlowhookWorker, "bootstrap"): "Flowhook's own line once the worker is registered and listening",
    (FlowhookWorker, "get_heartbeat_ttl"): "a running job's entry lives FLOWHOOK_HEARTBEAT_TTL, beaten every quarter",
    (FlowhookWorker, "heartbeat"): "a missed beat is not fatal; signs the worker in again if Redis forgot it",
    (FlowhookWorker, "_pubsub_exception_handler"): "a lost command channel is part of the outage's one line",
    (FlowhookWorker, "run_maintenance_tasks"): "skipped, not fatal, while Redis is away",
    (FlowhookWorker, "check_for_suspension"): "skipped, not fatal, while Redis is away",
    (FlowhookWorker, "dequeue_job_and_maintain_ttl"): "waits for Redis every second instead of quitting",
    (FlowhookWorker, "handle_exception"): "one line, no traceback, for the failures a handler means",
    (FlowhookWorker, "handle_execution_ended"): "held while Redis is away",
    (FlowhookWorker, "handle_job_success"): "held while Redis is away",
    (FlowhookWorker, "handle_job_retry"): "held while Redis is away",
    (FlowhookWorker, "handle_job_failure"): "held while Redis is away; a stopped job recorded as stopped",
    (FlowhookWorker, "_stopped_job_id"): "set (not overridden) so that RQ records an operator's stop as stopped",
    (FlowhookWorker, "execute_job"): "a job whose outcome Redis never took is reaped, not fatal",
    (PoolWorker, "__init__"): "slots per queue, its own dequeue and heartbeat connections",
    (PoolWorker, "death_penalty_class"): "a gevent timeout per job, not one SIGALRM per process",
    (PoolWorker, "work"): "many jobs at once: a feeder per queue, each taking a job only into a free slot",
    (
        PoolWorker,
        "prepare_job_execution",
    ): "takes every job off the intermediate queue: it dequeues one queue at a time",
    (PoolWorker, "handle_payload"): "stop-job ends the job it names, not the one RQ takes to be current",
    (PoolWorker, "request_stop_execution"): "stop-execution ends that execution's greenlet (RQ kills a work horse)",
    (SimpleWorker, "death_penalty_class"): "the SIGALRM timeout raising Flowhook's JobTimedOut",
    (SimpleWorker, "perform_job"): "the job's heartbeat beats while it runs and its outcome is written",
    (ForkWorker, "death_penalty_class"): "the SIGALRM timeout raising Flowhook's JobTimedOut",
    (GeventDeathPenalty, "__init__"): "keeps the job id RQ passes, for stop and cold stop",
    (GeventDeathPenalty, "setup_death_penalty"): "RQ's extension point for a death penalty",
    (GeventDeathPenalty, "cancel_death_penalty"): "RQ's extension point for a death penalty",
    (SignalDeathPenalty, "handle_death_penalty"): "raises JobTimedOut, a BaseException, not RQ's JobTimeoutException",
    (HandlerQueue, "acquire_maintenance_lock"): "a dead cleaner delays the next clean-up 30 s, not 15 min",
    (HandlerQueue, "intermediate_queue"): "a job taken but never started goes back to its queue",
    (UnstartedJobsRequeued, "cleanup"): "requeues a job no worker started (RQ fails it a minute later)",
    (UnstartedJobsRequeued, "should_be_cleaned_up"): "after UNSTARTED_AFTER (10 s), not a minute",
    (UnstartedJobsRequeued, "set_first_seen"): "its note lives a minute, not a day: none outlives its job",
}

RQ_BASES: dict[type, type] = {
    FlowhookWorker: BaseWorker,
    PoolWorker: RQSimpleWorker,
    SimpleWorker: RQSimpleWorker,
    ForkWorker: RQForkWorker,
    GeventDeathPenalty: BaseDeathPenalty,
    SignalDeathPenalty: UnixSignalDeathPenalty,
    HandlerQueue: Queue,
    UnstartedJobsRequeued: IntermediateQueue,
}

# RQ's signatures of what Flowhook overrides or calls with arguments, by parameter name.
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
    (BaseWorker.get_heartbeat_ttl, ["self", "job", "working_time"]),
    (BaseWorker.heartbeat, ["self", "timeout", "pipeline"]),
    (BaseWorker._pubsub_exception_handler, ["self", "exc", "pubsub", "pubsub_thread"]),
    (BaseWorker.run_maintenance_tasks, ["self"]),
    (BaseWorker.check_for_suspension, ["self", "burst"]),
    (BaseWorker.dequeue_job_and_maintain_ttl, ["self", "timeout", "max_idle_time"]),
    (BaseWorker.handle_exception, ["self", "job", "exc_info"]),
    (BaseWorker.handle_execution_ended, ["self", "job", "queue", "heartbeat_ttl"]),
    (BaseWorker.handle_job_success, ["self", "job", "queue", "started_job_registry", "execution"]),
    (BaseWorker.handle_job_retry, ["self", "job", "queue", "retry", "started_job_registry", "execution"]),
    (BaseWorker.handle_job_failure, ["self", "job", "queue", "started_job_registry", "exc_string", "execution"]),
    (BaseWorker.prepare_job_execution, ["self", "job", "remove_from_intermediate_queue"]),
    (BaseWorker.prepare_execution, ["self", "job"]),
    (BaseWorker.perform_job, ["self", "job", "queue", "execution"]),
    (BaseWorker.handle_payload, ["self", "message"]),
    (BaseWorker.request_stop_execution, ["self", "execution_id"]),
    (RQSimpleWorker.execute_job, ["self", "job", "queue"]),
    (BaseDeathPenalty.__init__, ["self", "timeout", "exception", "kwargs"]),
    (UnixSignalDeathPenalty.handle_death_penalty, ["self", "signum", "frame"]),
    (Queue.dequeue_any, ["queues", "timeout", "connection", "job_class", "serializer", "death_penalty_class"]),
    (Queue.push_job_id, ["self", "job_id", "pipeline", "at_front"]),
    (Queue.acquire_maintenance_lock, ["self"]),
    (IntermediateQueue.cleanup, ["self", "worker", "queue"]),
    (IntermediateQueue.should_be_cleaned_up, ["self", "job_id"]),
    (IntermediateQueue.set_first_seen, ["self", "job_id"]),
    (Execution.heartbeat, ["self", "started_job_registry", "ttl", "pipeline"]),
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
]


def overridden(cls: type) -> set[str]:
    """The names ``cls`` defines itself that its RQ base has too."""
    base = RQ_BASES[cls]
    own = {name for name in vars(cls) if not (name.startswith("__") and name != "__init__")}
    return {name for name in own if hasattr(base, name)}


@pytest.mark.parametrize("cls", list(RQ_BASES), ids=lambda cls: cls.__name__)
def test_every_override_of_rq_is_listed_with_its_reason(cls: type) -> None:
    listed = {name for owner, name in RQ_SURFACE if owner is cls and not name.startswith("_stopped")}
    assert overridden(cls) == listed


def test_the_private_names_used_are_few_and_listed() -> None:
    private = sorted(name for _, name in RQ_SURFACE if name.startswith("_") and not name.startswith("__"))
    assert private == ["_pubsub_exception_handler", "_stopped_job_id"]


@pytest.mark.parametrize(("method", "parameters"), PINNED, ids=[method.__qualname__ for method, _ in PINNED])
def test_rq_keeps_the_signature_flowhook_relies_on(method: Callable[..., Any], parameters: list[str]) -> None:
    assert list(inspect.signature(method).parameters) == parameters


def test_rq_times_a_job_with_its_death_penalty_class_passing_the_job_id() -> None:
    """The pool worker times each job, and finds the greenlet to stop, by the class RQ is given."""
    assert "with self.death_penalty_class(timeout, JobTimeoutException, job_id=job.id)" in inspect.getsource(
        BaseWorker.perform_job
    )


def test_rq_catches_every_exception_of_a_job_so_an_ending_is_recorded_as_its_failure() -> None:
    """JobEnded is a BaseException: RQ's perform_job must still write it as the job's failure."""
    source = inspect.getsource(BaseWorker.perform_job)
    assert "except:  # NOQA" in source
    assert "self._finalize_failure(job, queue, execution, sys.exc_info())" in source


def test_rq_records_a_job_as_stopped_by_its_stopped_job_id() -> None:
    """workers/base.py sets ``_stopped_job_id`` just before RQ's handle_job_failure reads it."""
    source = inspect.getsource(BaseWorker.handle_job_failure)
    assert "job_is_stopped = self._stopped_job_id == job.id" in source


def test_rq_takes_a_job_off_the_intermediate_queue_only_for_a_single_queue() -> None:
    """Why the pool worker, which dequeues each of its queues alone, always asks for it."""
    assert "remove_from_intermediate_queue = len(self.queues) == 1" in inspect.getsource(BaseWorker.perform_job)


def test_rq_keeps_each_running_execution_in_the_workers_index() -> None:
    """RQ's worker API names every job a pool worker runs through this index (tests/test_concurrency.py)."""
    source = inspect.getsource(Execution.create)
    assert "pipeline.sadd(execution.worker_executions_key, execution.composite_key)" in source


def test_rq_cleans_a_queues_intermediate_queue_through_the_queues_property() -> None:
    """HandlerQueue's intermediate_queue is the one RQ's maintenance cleans."""
    assert "queue.intermediate_queue.cleanup(self, queue)" in inspect.getsource(BaseWorker.clean_registries)


def test_rq_lengthens_a_connections_timeout_only_below_connection_timeout() -> None:
    """connection_timeout = 0 keeps Flowhook's read timeouts (workers/base.py)."""
    assert "current_socket_timeout < self.connection_timeout" in inspect.getsource(BaseWorker._set_connection)


def _stored(redis: Redis, job_id: str) -> dict[str, tuple[object, bool, object]]:
    """Every key that names the job (its id made generic): its type, whether it expires, a hash's fields."""
    found: dict[str, tuple[object, bool, object]] = {}
    for key in redis.scan_iter(f"*{job_id}*"):
        kind = redis.type(key)
        fields = sorted(redis.hkeys(key)) if kind == b"hash" else None
        found[key.decode().replace(job_id, "<id>")] = (kind, redis.ttl(key) > 0, fields)
    return found


def test_rq_enqueues_a_job_as_flowhooks_one_step_enqueue_does(redis: Redis) -> None:
    """flowhook/dedupe.py writes a job in a script of its own: what RQ's enqueue_job writes, no more, no less."""
    queue = HandlerQueue("pin.enqueue", connection=redis, serializer=JSONSerializer)

    def new_job() -> Job:
        return queue.create_job("workers.job.run_handler", args=("echo", {"x": "1"}), ttl=600, result_ttl=60)

    by_rq, by_flowhook = new_job(), new_job()
    queue.enqueue_job(by_rq)
    assert enqueue_once(by_flowhook, queue, "flowhook:dedupe:pin-enqueue", 60) == by_flowhook.id

    assert _stored(redis, by_flowhook.id) == _stored(redis, by_rq.id)
    rq_fields, flowhook_fields = redis.hgetall(by_rq.key), redis.hgetall(by_flowhook.key)
    for moment in (b"created_at", b"enqueued_at"):  # their own moments
        assert rq_fields.pop(moment)
        assert flowhook_fields.pop(moment)
    assert flowhook_fields == rq_fields
    assert queue.get_job_ids() == [by_rq.id, by_flowhook.id]
    assert queue.key.encode() in redis.smembers(Queue.redis_queues_keys)
    assert Job.fetch(by_flowhook.id, connection=redis, serializer=JSONSerializer).args == ["echo", {"x": "1"}]
    redis.delete(queue.key, by_rq.key, by_flowhook.key, "flowhook:dedupe:pin-enqueue")


def test_a_hand_over_tried_again_after_its_answer_was_lost_enqueues_the_job_once(redis: Redis) -> None:
    """An outage may lose the answer to a script that ran: trying again finds the job, enqueues nothing."""
    queue = HandlerQueue("pin.again", connection=redis, serializer=JSONSerializer)
    job = queue.create_job("workers.job.run_handler", args=("echo", {}), ttl=600)
    assert enqueue_once(job, queue, "flowhook:dedupe:pin-again", 60) == job.id
    assert enqueue_once(job, queue, "flowhook:dedupe:pin-again", 60) == job.id
    assert queue.get_job_ids() == [job.id]
    assert 0 < redis.ttl("flowhook:dedupe:pin-again") <= 60
    redis.delete(queue.key, job.key, "flowhook:dedupe:pin-again")
