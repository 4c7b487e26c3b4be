"""How calls are read and answers written, without Redis: the pure part of the LoyJoy contract."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from flowhook.contract import (
    DONE,
    FAILED,
    PENDING,
    POLL,
    MalformedCallError,
    Outcome,
    answer,
    flow_value,
    flow_variables,
)
from flowhook.envelope_parser import parse_envelope


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("text", "text"),
        (10, "10"),
        (2.5, "2.5"),
        (Decimal("1.10"), "1.10"),
        (True, "true"),
        (False, "false"),
        (None, ""),
        (["a", 1, None], '["a",1,null]'),
        ({"k": "ü"}, '{"k":"ü"}'),
    ],
)
def test_every_value_is_written_as_a_string(value: object, written: str) -> None:
    assert flow_value(value) == written


def test_lists_and_objects_round_trip_through_json() -> None:
    value = {"items": [1, 2.5, "x", None, {"deep": True}]}
    assert json.loads(flow_value(value)) == value


def test_a_handler_must_return_a_dict_with_valid_names() -> None:
    assert flow_variables(None) == {}
    with pytest.raises(TypeError, match="dict of variables"):
        flow_variables(["a"])
    with pytest.raises(TypeError, match="invalid variable names: bad-name"):
        flow_variables({"bad-name": 1})


def test_a_done_answer_carries_results_and_clears_the_job() -> None:
    body = answer("order", Outcome(DONE, variables={"eta": "tomorrow"}, job_id="abc"))
    variables = {"eta": "tomorrow", "order_status": "done", "order_job": "", "order_error": ""}
    assert body == {"data": {"variables": variables}}


def test_a_pending_answer_carries_the_job_and_progress_but_no_results() -> None:
    body = answer("order", Outcome(PENDING, variables={"eta": "x"}, job_id="abc", progress="50%", next=POLL))
    assert body["data"]["variables"] == {
        "order_status": "pending",
        "order_job": "abc",
        "order_error": "",
        "order_next": "poll",
        "order_progress": "50%",
    }


def test_status_variables_win_over_a_result_of_the_same_name() -> None:
    body = answer("order", Outcome(DONE, variables={"order_status": "shipped"}))
    assert body["data"]["variables"]["order_status"] == "done"


def test_a_failed_answer_says_why() -> None:
    variables = answer("order", Outcome(FAILED, error="no such order", job_id="abc"))["data"]["variables"]
    assert variables == {"order_status": "failed", "order_job": "", "order_error": "no such order"}


def test_ids_may_be_strings_or_integers_and_the_rest_is_optional() -> None:
    envelope = parse_envelope(b'{"process_instance_id": 42, "process_definition_id": 7, "extra": {"new": 1}}')
    assert envelope.process_instance_id == "42"
    assert envelope.process_definition_id == "7"
    assert envelope.params == {}
    assert envelope.variables == {}


def test_null_params_and_variables_count_as_empty() -> None:
    envelope = parse_envelope(b'{"process_instance_id": "a", "params": null, "variables": null}')
    assert (envelope.params, envelope.variables) == ({}, {})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"{}", "process_instance_id: Missing data"),
        (b'{"process_instance_id": ""}', "process_instance_id: Length must be between 1 and 200"),
        (b'{"process_instance_id": true}', "process_instance_id: Must be a string or an integer"),
        (b'{"process_instance_id": 1.5}', "process_instance_id: Must be a string or an integer"),
        (b'{"process_instance_id": "a", "variables": []}', "variables: Not a valid mapping"),
        (b'{"process_instance_id": "a", "variables": {"first name": "x"}}', "variables: Variable names .*: first name"),
        (b'{"process_instance_id": "a", "variables": {"x": NaN}}', "NaN is not valid JSON"),
        (b"\xff\xfe{", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_a_malformed_call_is_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedCallError, match=reason):
        parse_envelope(body)
