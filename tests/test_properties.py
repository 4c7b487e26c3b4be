"""Property tests (hypothesis) of reading calls and writing answers."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flowhook.contract import Envelope, MalformedCallError, flow_value, parse_envelope

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


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


@given(json_values)
def test_every_value_is_written_as_a_string(value: Any) -> None:
    assert isinstance(flow_value(value), str)


@given(st.lists(json_values, max_size=5) | st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_lists_and_objects_round_trip_through_json(value: Any) -> None:
    assert json.loads(flow_value(value)) == value


@given(st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_are_written_as_their_text(number: float) -> None:
    assert float(flow_value(number)) == float(number)
