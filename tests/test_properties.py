"""Property tests (hypothesis) of reading calls and writing answers.

The examples are the same every run (the `flowhook` profile in conftest.py), so a failure here is a
bug to fix, never a flake to re-run.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flowhook.contract import Envelope, MalformedCallError, flow_value
from flowhook.envelope_parser import parse_envelope

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


# What a call LoyJoy sends can hold: JSON values nested at most three deep, numbers within the 30
# digits the parser takes.
LIMIT = 10**30 - 1
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-LIMIT, LIMIT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
shallow = scalars | st.lists(scalars, max_size=4) | st.dictionaries(st.text(max_size=8), scalars, max_size=4)
values = scalars | st.lists(shallow, max_size=3) | st.dictionaries(st.text(max_size=8), shallow, max_size=3)
names = st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True)
bad_names = st.text(max_size=8).filter(lambda name: re.fullmatch(r"[A-Za-z0-9_]+", name) is None)
ids = st.text(min_size=1, max_size=200) | st.integers(-LIMIT, LIMIT)


def read(body: bytes) -> Envelope | MalformedCallError:
    """A call, or the refusal; any other exception fails the test."""
    try:
        return parse_envelope(body)
    except MalformedCallError as error:
        return error


@given(st.binary(max_size=300))
def test_any_bytes_are_a_call_or_a_clear_refusal(body: bytes) -> None:
    result = read(body)
    assert isinstance(result, Envelope) or result.status in (400, 413)


@given(st.dictionaries(st.sampled_from(["process_instance_id", "params", "variables", "x"]), json_values))
def test_any_json_object_is_a_call_or_a_clear_refusal(document: dict[str, Any]) -> None:
    envelope = read(json.dumps(document).encode())
    if isinstance(envelope, MalformedCallError):
        assert envelope.status in (400, 413)
        return
    assert envelope.process_instance_id == str(document["process_instance_id"])
    assert all(name.replace("_", "a").isalnum() and name.isascii() for name in envelope.variables)


@given(ids, st.dictionaries(names, values, max_size=10), st.dictionaries(st.text(max_size=8), values, max_size=4))
def test_a_well_formed_call_is_read_as_it_was_sent(
    instance: str | int, variables: dict[str, Any], params: dict[str, Any]
) -> None:
    body = {"process_instance_id": instance, "params": params, "variables": variables}
    envelope = parse_envelope(json.dumps(body).encode())
    assert envelope.process_instance_id == str(instance)
    assert envelope.variables == variables
    assert envelope.params == params


@given(ids, st.dictionaries(names, values, max_size=5), bad_names)
def test_a_call_with_a_bad_variable_name_is_refused_naming_it(
    instance: str | int, variables: dict[str, Any], bad: str
) -> None:
    body = {"process_instance_id": instance, "variables": {**variables, bad: "1"}}
    refusal = read(json.dumps(body).encode())
    assert isinstance(refusal, MalformedCallError)
    assert refusal.status == 400
    assert "Variable names may use only A-Z, a-z, 0-9 and _" in str(refusal)
    assert bad in str(refusal)


@given(values)
def test_every_value_is_written_as_text_the_flow_can_read_it_back_from(value: Any) -> None:
    written = flow_value(value)
    if value is None:
        assert written == ""
    elif isinstance(value, str):
        assert written == value  # LoyJoy's own variables pass through unchanged
    else:
        assert json.loads(written) == value  # numbers, true/false, lists and objects as JSON


@given(st.lists(json_values, max_size=5) | st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_lists_and_objects_round_trip_through_json(value: Any) -> None:
    assert json.loads(flow_value(value)) == value


@given(st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_are_written_as_their_text(number: float) -> None:
    assert float(flow_value(number)) == float(number)
