"""The OpenAPI document, and schemathesis fuzzing the live service against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from flowhook.openapi import build
from flowhook.registry import discover
from flowhook.settings import Settings
from tests.test_e2e import running_service

BIN = Path(sys.executable).parent


def test_the_document_describes_every_handler_and_its_answers(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document is not None
    assert document["openapi"] == "3.0.3"
    operation = document["paths"]["/webservice/typed"]["post"]
    assert set(operation["responses"]) == {"200", "400", "413", "415", "429"}
    assert "email, count" in operation["description"]
    envelope = document["components"]["schemas"]["Envelope"]
    assert envelope["required"] == ["process_instance_id"]
    # The answer names the status variables a flow branches on, in the handler's namespace (tp).
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    variables = answer["properties"]["data"]["properties"]["variables"]
    assert variables["required"] == ["tp_status", "tp_job", "tp_error"]
    assert variables["properties"]["tp_status"]["enum"] == ["done", "pending", "failed", "invalid"]
    assert "tp_progress" in variables["properties"]


def test_each_handlers_input_schema_is_in_the_document(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document is not None
    body = document["paths"]["/webservice/typed"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    envelope, variables = body["allOf"]
    assert envelope == {"$ref": "#/components/schemas/Envelope"}
    assert variables["properties"]["variables"] == {"$ref": "#/components/schemas/typed.Input"}
    typed_input = document["components"]["schemas"]["typed.Input"]
    assert typed_input["properties"] == {"email": {"type": "string", "format": "email"}, "count": {"type": "integer"}}
    assert sorted(typed_input["required"]) == ["count", "email"]
    assert "additionalProperties" not in typed_input  # LoyJoy's other variables come along
    # A handler without a schema reads every variable: the envelope alone describes its body.
    untyped = document["paths"]["/webservice/kept"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert untyped == {"$ref": "#/components/schemas/Envelope"}


def test_a_decimal_fields_limits_are_numbers_not_text() -> None:
    settings = Settings()  # the example handlers: sleep reads a Decimal between 0 and 300
    seconds = build(discover(settings), settings)["components"]["schemas"]["sleep.Input"]["properties"]["seconds"]
    assert seconds == {"type": "number", "minimum": 0, "maximum": 300}
    assert type(seconds["maximum"]) is int  # a Decimal would be written as the text "300"


@pytest.mark.e2e
def test_schemathesis_finds_no_server_error_undocumented_status_or_broken_answer(tmp_path: Path) -> None:
    with running_service(tmp_path, FLOWHOOK_BUDGET="0.2") as service:
        assert requests.get(f"{service.url}/openapi.json", timeout=5).status_code == 200
        command = [
            str(BIN / "schemathesis"),
            "run",
            f"{service.url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "40",
            "--seed",
            "20261124",
            "--no-color",
        ]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        log = service.log.read_text(errors="replace")
    assert finished.returncode == 0, finished.stdout[-5000:]
    # A handler's own HandlerError or RetryableError is logged in one line; anything else is a fault.
    assert "Traceback" not in log
