"""What each call's access log line reads (gunicorn.conf.py): its outcome, its job and an id to match."""

from __future__ import annotations

import re
import uuid

from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from tests.test_worker_path import open_gate

B3_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def post(client: FlaskClient, instance: str, handler: str, variables: dict[str, str], **headers: str) -> TestResponse:
    body = {"process_instance_id": instance, "variables": variables}
    response = client.post(f"/webservice/{handler}", json=body, headers=headers)
    assert response.status_code == 200
    return response


def test_loyjoys_trace_id_is_the_calls_id(client: FlaskClient, instance: str) -> None:
    response = post(client, instance, "quick", {}, **{"X-B3-TraceId": B3_TRACE_ID})
    assert response.headers["X-Request-Id"] == B3_TRACE_ID


def test_a_call_without_a_trace_id_gets_an_id_of_its_own(client: FlaskClient, instance: str) -> None:
    first = post(client, instance, "quick", {}).headers["X-Request-Id"]
    second = post(client, instance, "quick", {}, **{"X-B3-TraceId": "not a trace id"}).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert re.fullmatch(r"[0-9a-f]{16}", second)
    assert first != second


def test_a_poll_answered_done_names_its_job_for_the_log(client: FlaskClient, instance: str, redis: Redis) -> None:
    gate = f"log-{uuid.uuid4().hex}"
    pending = post(client, instance, "gated", {"gate": gate})
    assert pending.json is not None
    job_id = pending.json["data"]["variables"]["gated_job"]
    assert pending.headers["X-Flowhook-Status"] == "pending"
    assert pending.headers["X-Flowhook-Job"] == job_id

    open_gate(redis, gate)
    done = post(client, instance, "gated", {"gate": gate, "gated_job": job_id})
    assert done.json is not None
    assert done.json["data"]["variables"]["gated_job"] == ""  # the flow starts anew
    assert done.headers["X-Flowhook-Status"] == "done"
    assert done.headers["X-Flowhook-Job"] == job_id  # the log line still matches the worker's


def test_a_poll_with_a_made_up_job_logs_no_job(client: FlaskClient, instance: str) -> None:
    answer = post(client, instance, "gated", {"gate": "g", "gated_job": "ada@example.org"})
    assert answer.headers["X-Flowhook-Status"] == "failed"
    assert answer.headers["X-Flowhook-Job"] == "-"  # a variable's value never reaches the log
