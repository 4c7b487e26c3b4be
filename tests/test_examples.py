"""The example handlers a new user calls first: echo and sleep."""

from __future__ import annotations

import time

import pytest
from flask import Flask

from tests.conftest import CallFunction, caller


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


def test_a_sleep_past_the_budget_is_pending_with_progress_then_done(call_example: CallFunction) -> None:
    answer = call_example("sleep", {"seconds": "2"})
    assert answer["sleep_status"] == "pending"
    assert answer["sleep_progress"].endswith("%")
    deadline = time.monotonic() + 15
    while answer["sleep_status"] == "pending" and time.monotonic() < deadline:
        answer = call_example("sleep", {"seconds": "2", **answer})
    assert answer == {"slept": "2", "sleep_status": "done", "sleep_job": "", "sleep_error": ""}
