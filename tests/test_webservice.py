"""Malformed calls get a JSON 4xx, never a 500, an HTML page or a traceback."""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from tests.conftest import caller


def assert_json_error(response: TestResponse, code: int) -> dict[str, object]:
    assert response.status_code == code
    assert response.mimetype == "application/json"
    body = response.json
    assert body is not None
    assert body["error"]["code"] == code
    assert "Traceback" not in str(body)
    return dict(body["error"])


def test_unknown_handler_is_404(client: FlaskClient) -> None:
    error = assert_json_error(client.post("/webservice/nope", json={"process_instance_id": "a"}), 404)
    assert "nope" in str(error["message"])


def test_not_json_is_400(client: FlaskClient) -> None:
    response = client.post("/webservice/typed", data=b"{oops", content_type="application/json")
    assert "not valid JSON" in str(assert_json_error(response, 400)["message"])


def test_not_an_object_is_400(client: FlaskClient) -> None:
    response = client.post("/webservice/typed", json=["process_instance_id"])
    assert "JSON object" in str(assert_json_error(response, 400)["message"])


def test_missing_instance_id_is_400(client: FlaskClient) -> None:
    response = client.post("/webservice/typed", json={"variables": {"email": "a@example.org"}})
    assert "process_instance_id" in str(assert_json_error(response, 400)["message"])


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = client.post("/webservice/typed", data=b'{"process_instance_id": "a"}', content_type="text/plain")
    assert_json_error(response, 415)


def test_a_body_over_the_limit_is_413_and_names_the_limit(client: FlaskClient) -> None:
    body = b'{"process_instance_id": "a", "variables": {"x": "' + b"y" * 300_000 + b'"}}'
    response = client.post("/webservice/typed", data=body, content_type="application/json")
    assert "262144 bytes" in str(assert_json_error(response, 413)["message"])


def test_wrong_method_is_a_json_405(client: FlaskClient) -> None:
    assert_json_error(client.get("/webservice/typed"), 405)


def test_absurd_nesting_is_400_not_500(client: FlaskClient) -> None:
    response = client.post("/webservice/typed", data=b"[" * 200_000, content_type="application/json")
    assert_json_error(response, 400)


def test_the_service_keeps_serving_after_bad_calls(client: FlaskClient, instance: str) -> None:
    client.post("/webservice/typed", data=b"\xff" * 1000, content_type="application/json")
    answer = caller(client, instance)("typed", {"email": "ada@example.org", "count": "1"})
    assert answer["tp_status"] == "done"


@pytest.mark.usefixtures("test_workers")
def test_with_no_redis_new_work_is_pending_with_no_job_until_the_outage_limit_then_failed(instance: str) -> None:
    app = create_app(
        {
            "TESTING": True,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "FLOWHOOK_HANDLERS": "tests.handlers",
            "FLOWHOOK_BUDGET": "1",
            "FLOWHOOK_OUTAGE_LIMIT": "5",
        }
    )
    call = caller(app.test_client(), instance)
    variables = {"email": "ada@example.org", "count": "1"}
    started = time.monotonic()
    answer = call("typed", variables)
    assert 0.9 < time.monotonic() - started < 1.5  # it kept trying Redis for its budget, no longer
    # The flow's loop calls again at once while the answer says so; each call tries for its budget.
    while answer["tp_status"] == "pending":
        assert (answer["tp_job"], answer["tp_error"], answer["tp_next"]) == ("", "", "poll")
        answer = call("typed", {**variables, **answer})
        assert time.monotonic() - started < 5 + 1.5, "still pending past the outage limit"
    # Redis away longer than FLOWHOOK_OUTAGE_LIMIT: the flow must not call again forever.
    assert time.monotonic() - started >= 5
    assert (answer["tp_status"], answer["tp_job"]) == ("failed", "")
    assert "temporarily unavailable" in answer["tp_error"]
