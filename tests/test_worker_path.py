"""The default path: one RQ job per call, answered inline within the budget or polled later."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq.intermediate_queue import IntermediateQueue

from tests.conftest import CallFunction, caller
from tests.waiting import wait_until


def open_gate(redis: Redis, gate: str, after: float = 0.0) -> None:
    """Let the `gated` handler waiting on ``gate`` finish, now or from a timer."""
    if after:
        threading.Timer(after, redis.rpush, args=(f"test:gate:{gate}", "open")).start()
    else:
        redis.rpush(f"test:gate:{gate}", "open")


def runs(redis: Redis, gate: str) -> int:
    return int(redis.get(f"test:runs:{gate}") or 0)


def test_fast_work_is_answered_done_inline(call: CallFunction, instance: str) -> None:
    answer = call("typed", {"email": "ada@example.org", "count": "41"}, params={"referrer": "https://example.org/"})
    assert answer == {
        "next": "42",
        "ratio": "10.25",
        "even": "false",
        "nothing": "",
        "items": '["ada@example.org",41]',
        "detail": '{"count":41,"ok":true}',
        "instance": instance,
        "referrer": "https://example.org/",
        "tp_status": "done",
        "tp_job": "",
        "tp_error": "",
    }


def test_slow_work_turns_pending_and_a_poll_gets_the_result(call: CallFunction, redis: Redis) -> None:
    started = time.monotonic()
    first = call("gated", {"gate": "g1"})
    assert 0.9 < time.monotonic() - started < 2  # waited its 1 s budget, no longer (a second's margin)
    assert first["gated_status"] == "pending"
    assert first["gated_progress"] == "waiting for the gate"
    assert len(first["gated_job"]) == 32
    assert "opened" not in first

    open_gate(redis, "g1")
    second = call("gated", {"gate": "g1", **first})
    assert second["gated_status"] == "done"
    assert second["opened"] == "g1"
    assert second["gated_job"] == ""
    assert second["key"] == first["gated_job"]  # the idempotency key is the job's id
    assert runs(redis, "g1") == 1


def test_a_poll_is_woken_by_the_result_not_by_its_budget(call: CallFunction, redis: Redis) -> None:
    pending = call("gated", {"gate": "g2"})
    open_gate(redis, "g2", after=0.2)
    started = time.monotonic()
    done = call("gated", {"gate": "g2", **pending})
    assert done["gated_status"] == "done"
    assert time.monotonic() - started < 0.8  # the budget is 1 s


@pytest.mark.slow  # waits out budgets for seconds
def test_a_poll_that_times_out_stays_pending_and_starts_nothing(call: CallFunction, redis: Redis) -> None:
    pending = call("gated", {"gate": "g3"})
    again = call("gated", {"gate": "g3", **pending})
    assert again["gated_status"] == "pending"
    assert again["gated_job"] == pending["gated_job"]
    open_gate(redis, "g3")
    assert call("gated", {"gate": "g3", **again})["gated_status"] == "done"
    assert runs(redis, "g3") == 1


def test_after_done_the_same_call_starts_new_work(call: CallFunction, redis: Redis) -> None:
    open_gate(redis, "g4")
    first = call("gated", {"gate": "g4"})
    assert first["gated_status"] == "done"
    open_gate(redis, "g4")
    second = call("gated", {"gate": "g4", **first})  # carries gated_job == "" as LoyJoy would
    assert second["gated_status"] == "done"
    assert second["key"] != first["key"]
    assert runs(redis, "g4") == 2


def test_nothing_of_a_done_call_outlives_its_result(call: CallFunction, redis: Redis) -> None:
    open_gate(redis, "g11")
    answer = call("gated", {"gate": "g11"})
    assert answer["gated_status"] == "done"
    # A pool worker writes its jobs' ends once a second (workers/job.py).
    wait_until(
        lambda: answer["key"].encode() not in [redis.get(key) for key in redis.keys("flowhook:dedupe:*")],
        3,
        "the job's dedupe entry was not released",
    )
    for key in (f"rq:job:{answer['key']}", f"rq:results:{answer['key']}"):
        assert 0 < redis.ttl(key) <= 3600


def test_a_done_job_leaves_no_mark_of_rq_maintenance_behind(call: CallFunction, redis: Redis, app: Flask) -> None:
    pending = call("gated", {"gate": "g12"})
    # As RQ's maintenance marks a job it sees between the queue and its start (kept for a day).
    queue = app.extensions["flowhook"].store.queue("gated")
    queue_key = queue.key
    mark = IntermediateQueue(queue_key, redis).get_first_seen_key(pending["gated_job"])
    redis.set(mark, "1", ex=86400)
    open_gate(redis, "g12")
    assert call("gated", {"gate": "g12", **pending})["gated_status"] == "done"
    wait_until(lambda: not redis.exists(mark), 3, "the mark was not deleted with the job's dedupe entry")
    # A worker of several handlers' queues takes each job off its intermediate queue as it starts
    # it (RQ does so only for a worker of one queue); left there, maintenance would fail it later.
    assert redis.llen(queue.intermediate_queue_key) == 0


@pytest.mark.slow  # waits out budgets for seconds
def test_a_resent_call_attaches_to_the_running_job(call: CallFunction, redis: Redis) -> None:
    first = call("gated", {"gate": "g5"})
    # The resend differs only in variables that are not gated's input, including its own status.
    resent = call("gated", {"gate": "g5", "gated_status": "pending", "other_handler_job": "x"})
    assert resent["gated_status"] == "pending"
    assert resent["gated_job"] == first["gated_job"]
    open_gate(redis, "g5")
    assert call("gated", {"gate": "g5", **resent})["gated_status"] == "done"
    assert runs(redis, "g5") == 1


def test_concurrent_identical_calls_run_the_work_once(client: FlaskClient, instance: str, redis: Redis) -> None:
    answers: list[dict[str, str]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(caller(client, instance)("gated", {"gate": "g6"})))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {answer["gated_job"] for answer in answers} != {""}
    assert len({answer["gated_job"] for answer in answers}) == 1
    open_gate(redis, "g6")
    assert caller(client, instance)("gated", {"gate": "g6", **answers[0]})["gated_status"] == "done"
    assert runs(redis, "g6") == 1


@pytest.mark.slow  # waits out budgets for seconds
def test_different_input_is_different_work(call: CallFunction, redis: Redis) -> None:
    first = call("gated", {"gate": "g7a"})
    second = call("gated", {"gate": "g7b"})
    assert first["gated_job"] != second["gated_job"]
    open_gate(redis, "g7a")
    open_gate(redis, "g7b")


def test_invalid_variables_answer_invalid_with_the_field_and_start_nothing(call: CallFunction) -> None:
    answer = call("typed", {"email": "not an address", "count": "many"})
    assert answer["tp_status"] == "invalid"
    assert "email: Not a valid email address." in answer["tp_error"]
    assert "count: Not a valid integer." in answer["tp_error"]
    assert answer["tp_job"] == ""
    missing = call("typed", {"email": "ada@example.org"})
    assert missing == {"tp_status": "invalid", "tp_job": "", "tp_error": "count: Missing data for required field."}


def test_a_handler_error_fails_with_its_message(call: CallFunction) -> None:
    assert call("refuse") == {"refuse_status": "failed", "refuse_job": "", "refuse_error": "no such order"}


def test_an_unexpected_exception_fails_without_leaking_its_message(call: CallFunction) -> None:
    answer = call("boom", {"email": "john.smith@example.org"})
    assert answer["boom_status"] == "failed"
    assert answer["boom_error"] == "the handler failed (ValueError)"
    assert answer["boom_job"] == ""


def test_a_job_over_its_timeout_fails(call: CallFunction) -> None:
    answer = call("overrun")
    assert answer["overrun_status"] == "failed"
    assert answer["overrun_error"] == "the work took longer than its 1 s limit"


def test_a_handler_returning_no_dict_fails(call: CallFunction) -> None:
    answer = call("bad_output")
    assert answer["bad_output_status"] == "failed"
    assert answer["bad_output_error"] == "the handler failed (TypeError)"


def test_a_job_id_from_another_conversation_is_not_found(
    call: CallFunction, client: FlaskClient, redis: Redis, instance: str
) -> None:
    pending = call("gated", {"gate": "g8"})
    stranger = caller(client, instance + "-other")("gated", {"gate": "g8", "gated_job": pending["gated_job"]})
    assert stranger == {
        "gated_status": "failed",
        "gated_job": "",
        "gated_error": "unknown or expired job; start again",
    }
    open_gate(redis, "g8")
    assert call("gated", {"gate": "g8", **pending})["gated_status"] == "done"


def test_a_job_id_of_another_handler_is_not_found(call: CallFunction, redis: Redis) -> None:
    pending = call("gated", {"gate": "g9"})
    answer = call("typed", {"email": "ada@example.org", "count": "1", "tp_job": pending["gated_job"]})
    assert answer["tp_status"] == "failed"
    assert answer["tp_error"] == "unknown or expired job; start again"
    open_gate(redis, "g9")


def test_unknown_and_garbage_job_ids_fail_so_the_flow_cannot_loop(call: CallFunction) -> None:
    for job_id in ["0" * 32, "not-a-job", "../../etc", 12345]:
        answer = call("gated", {"gate": "g10", "gated_job": job_id})
        assert answer == {
            "gated_status": "failed",
            "gated_job": "",
            "gated_error": "unknown or expired job; start again",
        }
