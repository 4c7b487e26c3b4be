"""Variable names are exact: only A-Z, a-z, 0-9 and _, nothing after them (no trailing newline)."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

from flowhook.contract import MalformedCallError, flow_variables
from flowhook.envelope_parser import parse_envelope
from tests.conftest import CallFunction

# `$` in a pattern matches before a final newline; a space and a digit of another script are not
# in A-Z, a-z, 0-9 either.
NOT_NAMES = ["abc\n", "abc ", "abc\u0663", "\n", "abc\nd"]
REFUSAL = "the body is not a WebService call: variables: Variable names may use only A-Z, a-z, 0-9 and _: "


def body(name: str) -> bytes:
    return json.dumps({"process_instance_id": "names-1", "variables": {"ok": "1", name: "x"}}).encode()


@pytest.mark.parametrize("name", NOT_NAMES)
def test_a_call_with_an_inexact_name_is_refused_like_any_invalid_name(name: str) -> None:
    with pytest.raises(MalformedCallError) as refused:
        parse_envelope(body(name))
    assert refused.value.status == 400
    assert str(refused.value) == REFUSAL + name
    with pytest.raises(MalformedCallError) as invalid:
        parse_envelope(body("first name"))
    assert str(invalid.value) == REFUSAL + "first name"  # today's refusal of an invalid name, same words


@pytest.mark.parametrize("name", NOT_NAMES)
def test_the_endpoint_refuses_an_inexact_name_with_a_400(client: FlaskClient, name: str) -> None:
    response = client.post("/webservice/quick", data=body(name), content_type="application/json")
    assert response.status_code == 400
    assert response.json is not None
    assert response.json["error"]["message"] == REFUSAL + name


@pytest.mark.parametrize("name", NOT_NAMES)
def test_a_handler_may_not_return_an_inexact_name(name: str) -> None:
    with pytest.raises(TypeError, match="a handler returned invalid variable names"):
        flow_variables({"ok": "1", name: "x"})


@pytest.mark.parametrize("name", ["abc", "ABC_09", "_", "9"])
def test_exact_names_still_pass(call: CallFunction, name: str) -> None:
    assert parse_envelope(body(name)).variables == {"ok": "1", name: "x"}
    assert flow_variables({name: 1}) == {name: "1"}
    assert call("quick", {name: "x"})["quick_status"] == "done"
