"""Authentication, limits and rate limiting: each bad call gets its own clear 4xx, and the service goes on."""

from __future__ import annotations

import base64
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.conftest import WorkerPool
from tests.test_e2e import running_service

TOKEN = "t0ken-for-the-tests-0123456789"
OTHER = "second-token-while-rotating-42"
ORDERS = "orders-own-token-abcdefghijkl"


@pytest.fixture
def locked(redis_url: str, test_workers: WorkerPool) -> Flask:
    """The test app with two global tokens and a token of its own for handler `typed`."""
    return create_app(
        {
            "REDIS_URL": redis_url,
            "FLOWHOOK_HANDLERS": "tests.handlers",
            "FLOWHOOK_QUEUE": test_workers.queue,
            "FLOWHOOK_TOKENS": f"{TOKEN},{OTHER}",
            "FLOWHOOK_TOKENS_TYPED": ORDERS,
        }
    )


def body() -> dict[str, object]:
    return {"process_instance_id": f"sec-{uuid.uuid4().hex}", "variables": {"a": "1"}}


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"loyjoy:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "credentials",
    [
        {"headers": {"Authorization": f"Bearer {TOKEN}"}},
        {"headers": {"Authorization": f"bearer {OTHER}"}},
        {"headers": basic(TOKEN)},
        {"query_string": {"token": OTHER}},
    ],
)
def test_a_valid_token_opens_the_endpoint_every_way_loyjoy_can_send_it(
    locked: Flask, credentials: dict[str, object]
) -> None:
    response = locked.test_client().post("/webservice/quick", json=body(), **credentials)
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["data"]["variables"]["quick_status"] == "done"


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"headers": {"Authorization": "Bearer wrong-token-of-the-right-size"}},
        {"headers": {"Authorization": f"Bearer {TOKEN}x"}},
        {"headers": {"Authorization": TOKEN}},
        {"headers": {"Authorization": "Basic !!not-base64!!"}},
        {"headers": basic("")},
        {"query_string": {"token": ""}},
    ],
)
def test_missing_or_wrong_credentials_are_401_without_saying_what_failed(
    locked: Flask, credentials: dict[str, object]
) -> None:
    response = locked.test_client().post("/webservice/quick", json=body(), **credentials)
    assert response.status_code == 401
    assert response.json == {
        "error": {"code": 401, "name": "Unauthorized", "message": "missing or invalid credentials"}
    }
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_unknown_handlers_are_not_revealed_without_credentials(locked: Flask) -> None:
    assert locked.test_client().post("/webservice/nope", json=body()).status_code == 401


def test_a_handler_with_tokens_of_its_own_takes_only_those(locked: Flask) -> None:
    client = locked.test_client()
    variables = {"email": "ada@example.org", "count": "1"}
    call = {"process_instance_id": "sec-typed", "variables": variables}
    assert client.post("/webservice/typed", json=call, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    assert client.post("/webservice/typed", json=call, headers={"Authorization": f"Bearer {ORDERS}"}).status_code == 200


def test_health_metrics_and_the_document_need_no_token(locked: Flask) -> None:
    """Load balancers, Prometheus and API tools call these without LoyJoy's token; calls still need it."""
    client = locked.test_client()
    assert (client.get("/healthz").status_code, client.get("/healthz").json) == (200, {"status": "ok"})
    ready = client.get("/readyz")
    assert ready.status_code == 200  # the session's workers serve the test handlers
    assert ready.json is not None
    assert ready.json["ready"] is True
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "flowhook_redis_up 1.0" in metrics.get_data(as_text=True)
    document = client.get("/openapi.json")
    assert document.status_code == 200
    assert document.json is not None
    assert "/webservice/quick" in document.json["paths"]
    # The document tells API tools how to present a token where one is needed.
    assert set(document.json["components"]["securitySchemes"]) == {"bearer", "basic", "token"}
    assert client.post("/webservice/quick", json=body()).status_code == 401


def raw(client: FlaskClient, data: bytes) -> tuple[int, str]:
    response = client.post("/webservice/quick", data=data, content_type="application/json")
    assert response.json is not None
    return response.status_code, str(response.json["error"]["message"])


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b'{"process_instance_id": "a", "process_instance_id": "b"}', 400, "appears twice"),
        (b'{"process_instance_id": "a", "variables": {"x": 1e999}}', 400, "too large"),
        (b'{"process_instance_id": "a", "variables": {"x": ' + b"9" * 40 + b"}}", 400, "more than 30 digits"),
        (b'{"process_instance_id": "a", "variables": {"x": -Infinity}}', 400, "-Infinity is not valid JSON"),
        (b'{"process_instance_id": "a", "variables": {"x": ' + b"[" * 20 + b"]" * 20 + b"}}", 400, "nested more"),
        (b'{"process_instance_id": "a", "params": {"x": ' + b'{"y":' * 20 + b"1" + b"}" * 20 + b"}}", 400, "nested"),
        (b'{"process_instance_id": "a", "variables": {"x": "' + b"v" * 70_000 + b'"}}', 413, "longer than 65536"),
        ('{"process_instance_id": "\u00e9"}'.encode("latin-1"), 400, "not valid JSON"),
        (b'{"process_instance_id": "a", "variables": {"bad name": "1"}}', 400, "bad name"),
    ],
)
def test_each_limit_is_a_clear_4xx(client: FlaskClient, data: bytes, status: int, message: str) -> None:
    assert raw(client, data)[0] == status
    assert message in raw(client, data)[1]


def test_too_many_variables_is_413(client: FlaskClient) -> None:
    variables = ", ".join(f'"v{number}": "1"' for number in range(501))
    status, message = raw(client, ('{"process_instance_id": "a", "variables": {' + variables + "}}").encode())
    assert (status, message) == (413, "more than 500 variables")


def test_a_body_shorter_than_its_content_length_is_400_not_a_cut_call(client: FlaskClient) -> None:
    """A client that went away mid-body: its prefix may be valid JSON, but it is not the call."""
    whole = b'{"process_instance_id": "a"}'
    response = client.post(
        "/webservice/quick",
        input_stream=io.BytesIO(whole),
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(len(whole) + 10)},
    )
    assert response.status_code == 400
    assert response.json is not None
    assert "ended before its Content-Length" in response.json["error"]["message"]


def test_a_conversation_over_its_rate_limit_gets_429_and_others_go_on(redis_url: str, test_workers: WorkerPool) -> None:
    app = create_app(
        {
            "REDIS_URL": redis_url,
            "FLOWHOOK_HANDLERS": "tests.handlers",
            "FLOWHOOK_QUEUE": test_workers.queue,
            "FLOWHOOK_RATE_LIMIT_CONVERSATION": "3/minute",
        }
    )
    client = app.test_client()
    looping = {"process_instance_id": f"loop-{uuid.uuid4().hex}", "variables": {}}
    statuses = [client.post("/webservice/quick", json=looping).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.post("/webservice/quick", json=looping)
    assert refused.json is not None
    assert refused.json["error"]["code"] == 429
    assert client.post("/webservice/quick", json=body()).status_code == 200  # another conversation


def test_a_client_address_over_its_rate_limit_gets_429(redis_url: str, test_workers: WorkerPool) -> None:
    app = create_app(
        {
            "REDIS_URL": redis_url,
            "FLOWHOOK_HANDLERS": "tests.handlers",
            "FLOWHOOK_QUEUE": test_workers.queue,
            "FLOWHOOK_RATE_LIMIT_ADDRESS": "2/minute",
            "FLOWHOOK_TRUSTED_PROXIES": "1",
        }
    )
    client = app.test_client()
    address = f"198.51.100.{uuid.uuid4().int % 250}"
    forwarded = {"X-Forwarded-For": address}
    statuses = [client.post("/webservice/quick", json=body(), headers=forwarded).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    other = {"X-Forwarded-For": "203.0.113.7"}
    assert client.post("/webservice/quick", json=body(), headers=other).status_code == 200


@pytest.mark.e2e
def test_attacks_over_http_get_their_4xx_and_the_service_keeps_serving(tmp_path: Path) -> None:
    with running_service(tmp_path, FLOWHOOK_TOKENS=TOKEN) as service:
        url = f"{service.url}/webservice/echo"
        auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        attacks: list[tuple[dict[str, Any], int]] = [
            ({"data": b"{}", "headers": {"Content-Type": "application/json"}}, 401),
            ({"data": b'{"process_instance_id": "x"}', "headers": {"Authorization": "Bearer guess"}}, 401),
            ({"data": b"x" * 10_000_000, "headers": auth}, 413),
            ({"data": (b"x" * 300_000 for _ in range(3)), "headers": auth}, 400),  # chunked: no length
            ({"data": b"[" * 100_000, "headers": auth}, 400),
            ({"data": b'{"process_instance_id": 1, "variables": {"a": NaN}}', "headers": auth}, 400),
            ({"data": b"\xff\xfe\x00", "headers": auth}, 400),
            ({"data": b'{"process_instance_id": "x"}', "headers": {**auth, "Content-Type": "text/xml"}}, 415),
        ]
        for request, status in attacks:
            response = requests.post(url, timeout=30, **request)
            assert response.status_code == status, (request["headers"], response.text[:200])
            assert response.json()["error"]["code"] == status
        good = requests.post(
            url, json={"process_instance_id": "after", "variables": {"a": "1"}}, headers=auth, timeout=10
        )
        assert good.json()["data"]["variables"] == {"a": "1", "echo_status": "done", "echo_job": "", "echo_error": ""}
        log = service.log.read_text(errors="replace")
    assert "Traceback" not in log
    assert TOKEN not in log
