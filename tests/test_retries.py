"""Retries: a RetryableError is tried again per the handler's settings; nothing else is."""

from __future__ import annotations

import uuid

import pytest
from redis import Redis

from tests.conftest import CallFunction
from tests.waiting import poll_until_over


def poll_until_resolved(call: CallFunction, handler: str, variables: dict[str, str]) -> list[dict[str, str]]:
    """Call, then poll as the flow would, until the answer is not pending; returns every answer."""
    answers: list[dict[str, str]] = []
    poll_until_over(call, handler, variables, timeout=20, each=answers.append)
    return answers


def test_a_retryable_error_is_retried_and_polls_stay_pending_meanwhile(call: CallFunction, redis: Redis) -> None:
    key = uuid.uuid4().hex
    variables = {"key": key, "failures": "1", "gate": key}
    first = call("flaky", variables)
    assert first["flaky_status"] == "pending"
    redis.rpush(f"test:gate:{key}", "open")
    redis.expire(f"test:gate:{key}", 300)
    answers = [first, *poll_until_resolved(call, "flaky", {**variables, **first})]
    assert answers[-1]["flaky_status"] == "done"
    assert answers[-1]["attempts"] == "2"
    assert answers[-1]["key"] == answers[0]["flaky_job"]  # the same idempotency key for every attempt
    assert int(redis.get(f"test:attempts:{key}") or 0) == 2


@pytest.mark.slow  # waits out budgets for seconds
def test_when_retries_are_used_up_the_call_fails(call: CallFunction, redis: Redis) -> None:
    key = uuid.uuid4().hex
    answers = poll_until_resolved(call, "flaky", {"key": key, "failures": "5"})
    assert answers[-1] == {"flaky_status": "failed", "flaky_job": "", "flaky_error": "the ERP is busy"}
    assert int(redis.get(f"test:attempts:{key}") or 0) == 3  # the first attempt and 2 retries


def test_other_errors_are_not_retried(call: CallFunction, redis: Redis) -> None:
    key = uuid.uuid4().hex
    answers = poll_until_resolved(call, "flaky", {"key": key, "failures": "5", "crash": "true"})
    assert answers[-1]["flaky_error"] == "the handler failed (ValueError)"
    assert int(redis.get(f"test:attempts:{key}") or 0) == 1


def test_results_are_kept_for_the_handlers_result_ttl(call: CallFunction, redis: Redis) -> None:
    answer = call("kept")
    assert answer["kept_status"] == "done"
    assert 0 < redis.ttl(f"rq:job:{answer['key']}") <= 7
    assert 0 < redis.ttl(f"rq:results:{answer['key']}") <= 7
