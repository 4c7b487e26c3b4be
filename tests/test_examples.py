"""The example handlers a new user calls first: echo and sleep."""

from __future__ import annotations

import time
import uuid

import pytest
from flask import Flask
from redis import Redis

from tests.conftest import CallFunction, OrderAPI, caller
from tests.waiting import poll_until_over


@pytest.fixture
def call_example(example_app: Flask, instance: str) -> CallFunction:
    return caller(example_app.test_client(), instance)


def test_echo_answers_done_with_the_variables(call_example: CallFunction) -> None:
    answer = call_example("echo", {"firstname": "Ada", "nps_score": "10", "age": 36})
    assert answer == {
        "firstname": "Ada",
        "nps_score": "10",
        "age": "36",
        "echo_status": "done",
        "echo_job": "",
        "echo_error": "",
    }


def test_echo_does_not_echo_its_own_status_variables(call_example: CallFunction) -> None:
    answer = call_example("echo", {"name": "Ada", "echo_status": "done", "echo_job": "", "echo_error": "old"})
    assert answer == {"name": "Ada", "echo_status": "done", "echo_job": "", "echo_error": ""}


@pytest.mark.parametrize("seconds", ["abc", "-1", "301", "NaN", ""])
def test_sleep_refuses_seconds_outside_0_to_300(call_example: CallFunction, seconds: str) -> None:
    answer = call_example("sleep", {"seconds": seconds})
    assert answer["sleep_status"] == "invalid"
    assert answer["sleep_error"].startswith("seconds: ")


def test_sleep_without_seconds_is_invalid(call_example: CallFunction) -> None:
    answer = call_example("sleep", {})
    assert answer == {
        "sleep_status": "invalid",
        "sleep_job": "",
        "sleep_error": "seconds: Missing data for required field.",
    }


def test_a_short_sleep_is_done_inline(call_example: CallFunction) -> None:
    assert call_example("sleep", {"seconds": "0.1"})["slept"] == "0.1"


@pytest.mark.slow  # waits out budgets for seconds
def test_a_sleep_past_the_budget_is_pending_with_progress_then_done(call_example: CallFunction) -> None:
    answer = call_example("sleep", {"seconds": "2"})
    assert answer["sleep_status"] == "pending"
    # The budget (1 s) ends between the reports at 0.75 s and 1.25 s: the same share on every run.
    assert answer["sleep_progress"] == "38%"
    answer = poll_until_over(call_example, "sleep", {"seconds": "2"}, answer, timeout=15)
    assert answer == {"slept": "2", "sleep_status": "done", "sleep_job": "", "sleep_error": ""}


def order_requests(order_id: str) -> list[dict[str, str]]:
    return [seen for seen in OrderAPI.requests_seen if seen["order_id"] == order_id]


def test_order_lookup_answers_inline_from_the_api(call_example: CallFunction, redis: Redis) -> None:
    answer = call_example("order_lookup", {"order_id": "A1", "email": "ada@example.org"})
    assert answer == {
        "order_state": "shipped",
        "order_eta": "2026-11-30",
        "order_items": '["book","pen"]',
        "order_lookup_status": "done",
        "order_lookup_job": "",
        "order_lookup_error": "",
    }
    key = order_requests("A1")[-1]["key"]
    assert not redis.exists(f"rq:job:{key}")  # inline, no job


def test_order_lookup_of_an_unknown_order_fails_with_a_reason(call_example: CallFunction) -> None:
    answer = call_example("order_lookup", {"order_id": "B2", "email": "ada@example.org"})
    assert answer["order_lookup_status"] == "failed"
    assert answer["order_lookup_error"] == "no such order"


def test_order_lookup_checks_its_input(call_example: CallFunction) -> None:
    answer = call_example("order_lookup", {"order_id": "../admin", "email": "nobody"})
    assert answer["order_lookup_status"] == "invalid"
    assert "order_id: String does not match expected pattern." in answer["order_lookup_error"]
    assert "email: Not a valid email address." in answer["order_lookup_error"]


@pytest.mark.parametrize("order_id", ["A-1001\n", "A-1001\r\n", "", "A" * 41])
def test_order_lookup_takes_only_a_whole_order_id(call_example: CallFunction, order_id: str) -> None:
    answer = call_example("order_lookup", {"order_id": order_id, "email": "ada@example.org"})
    assert answer["order_lookup_status"] == "invalid"
    assert answer["order_lookup_error"] == "order_id: String does not match expected pattern."


@pytest.mark.slow  # waits out budgets for seconds
def test_a_slow_api_hands_the_lookup_to_a_worker_with_the_same_idempotency_key(
    call_example: CallFunction,
) -> None:
    started = time.monotonic()
    answer = call_example("order_lookup", {"order_id": "slow", "email": "ada@example.org"})
    assert time.monotonic() - started < 1.5  # the request was bounded by the 1 s budget
    assert answer["order_lookup_status"] == "pending"
    job_id = answer["order_lookup_job"]
    answer = poll_until_over(call_example, "order_lookup", {"order_id": "slow", "email": "ada@example.org"}, answer)
    assert answer["order_state"] == "shipped"
    assert [seen["key"] for seen in order_requests("slow")] == [job_id, job_id]


def test_a_busy_api_is_retried_in_a_worker(call_example: CallFunction) -> None:
    order_id = f"busy-{uuid.uuid4().hex[:8]}"
    answer = poll_until_over(call_example, "order_lookup", {"order_id": order_id, "email": "ada@example.org"})
    assert answer["order_state"] == "shipped"
    first, second = order_requests(order_id)
    assert first["key"] == second["key"]


def test_order_lookup_without_its_url_fails_clearly(
    call_example: CallFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORDER_API_URL")
    answer = call_example("order_lookup", {"order_id": "A1", "email": "ada@example.org"})
    assert answer["order_lookup_error"] == "the order lookup is not configured (ORDER_API_URL)"
