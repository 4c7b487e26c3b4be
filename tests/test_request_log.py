"""What each call's access log line reads (gunicorn.conf.py): its outcome, its job and an id to match.

The view leaves the outcome and the job in the WSGI environ (``flowhook.status``, ``flowhook.job``)
for the line; the id is the ``X-Request-Id`` answer header. Flowhook's logger (flowhook/logs.py)
writes the very line gunicorn's own logger would, computing only the atoms the format uses.
"""

from __future__ import annotations

import ast
import datetime
import logging
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from gunicorn.config import Config
from gunicorn.glogging import Logger as StockLogger
from redis import Redis
from werkzeug.test import TestResponse

from flowhook.logs import GunicornJsonLogger, GunicornLogger
from tests.conftest import ROOT
from tests.test_worker_path import open_gate

B3_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def post(client: FlaskClient, instance: str, handler: str, variables: dict[str, str], **headers: str) -> TestResponse:
    body = {"process_instance_id": instance, "variables": variables}
    response = client.post(f"/webservice/{handler}", json=body, headers=headers)
    assert response.status_code == 200
    return response


@pytest.fixture
def environs(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The WSGI environ of each request the app answers in the test, as the server would see it after."""
    seen: list[dict[str, Any]] = []
    wsgi_app = app.wsgi_app

    def keep(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(environ)
        return wsgi_app(environ, start_response)

    monkeypatch.setattr(app, "wsgi_app", keep)
    return seen


def logged(environs: list[dict[str, Any]]) -> tuple[str, str]:
    """The outcome and the job the access line reads from the last call's WSGI environ."""
    environ = environs[-1]
    return environ.get("flowhook.status", "-"), environ.get("flowhook.job", "-")


def test_loyjoys_trace_id_is_the_calls_id(client: FlaskClient, instance: str) -> None:
    response = post(client, instance, "quick", {}, **{"X-B3-TraceId": B3_TRACE_ID})
    assert response.headers["X-Request-Id"] == B3_TRACE_ID


def test_a_call_without_a_trace_id_gets_an_id_of_its_own(client: FlaskClient, instance: str) -> None:
    first = post(client, instance, "quick", {}).headers["X-Request-Id"]
    second = post(client, instance, "quick", {}, **{"X-B3-TraceId": "not a trace id"}).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert re.fullmatch(r"[0-9a-f]{16}", second)
    assert first != second


def test_the_outcome_is_for_the_log_only(client: FlaskClient, instance: str, environs: list[dict[str, Any]]) -> None:
    response = post(client, instance, "quick", {})
    assert logged(environs) == ("done", "-")
    assert not [name for name, _ in response.headers if name.lower().startswith("x-flowhook-")]


def test_a_poll_answered_done_names_its_job_for_the_log(
    client: FlaskClient, instance: str, redis: Redis, environs: list[dict[str, Any]]
) -> None:
    gate = f"log-{uuid.uuid4().hex}"
    pending = post(client, instance, "gated", {"gate": gate})
    assert pending.json is not None
    job_id = pending.json["data"]["variables"]["gated_job"]
    assert logged(environs) == ("pending", job_id)

    open_gate(redis, gate)
    done = post(client, instance, "gated", {"gate": gate, "gated_job": job_id})
    assert done.json is not None
    assert done.json["data"]["variables"]["gated_job"] == ""  # the flow starts anew
    assert logged(environs) == ("done", job_id)  # the log line still matches the worker's


def test_a_poll_with_a_made_up_job_logs_no_job(
    client: FlaskClient, instance: str, environs: list[dict[str, Any]]
) -> None:
    post(client, instance, "gated", {"gate": "g", "gated_job": "ada@example.org"})
    assert logged(environs) == ("failed", "-")  # a variable's value never reaches the log


# The access line, as gunicorn writes it.


def access_log_format() -> str:
    """The format gunicorn.conf.py sets, read without running the file (it patches with gevent)."""
    tree = ast.parse((ROOT / "gunicorn.conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "access_log_format" for t in node.targets):
            value: str = ast.literal_eval(node.value)
            return value
    raise AssertionError("gunicorn.conf.py sets no access_log_format")


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Response:
    status = "200 OK"
    sent = 123
    headers = [("Content-Type", "application/json"), ("X-Request-Id", "0af7651916cd43dd")]


class Request:
    headers = [("HOST", "127.0.0.1:8000"), ("USER-AGENT", 'curl "8"'), ("CONTENT-TYPE", "application/json")]


def environ(**extra: str) -> dict[str, Any]:
    return {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/webservice/echo?x=1",
        "PATH_INFO": "/webservice/echo",
        "QUERY_STRING": "x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_USER_AGENT": 'curl "8"',
        "wsgi.input": object(),
        **extra,
    }


def access_line(logger_class: type[StockLogger], log_format: str, env: dict[str, Any]) -> logging.LogRecord:
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", log_format)
    logger = logger_class(config)
    logger.now = lambda: "[29/Nov/2026:16:00:00 +0000]"
    lines = Lines()
    logger.access_log.addHandler(lines)
    logger.access(Response(), Request(), env, datetime.timedelta(seconds=1, microseconds=2345))
    assert len(lines.records) == 1
    return lines.records[0]


@pytest.mark.parametrize(
    "env",
    [environ(**{"flowhook.status": "pending", "flowhook.job": "0a1b2c"}), environ()],
    ids=["webservice call", "other request"],
)
def test_the_access_line_keeps_its_shape(env: dict[str, Any]) -> None:
    line = access_line(GunicornLogger, access_log_format(), env).getMessage()
    assert line == access_line(StockLogger, access_log_format(), env).getMessage()
    status, job = env.get("flowhook.status", "-"), env.get("flowhook.job", "-")
    assert line == (
        f'127.0.0.1 [29/Nov/2026:16:00:00 +0000] "POST /webservice/echo" 200 123 1002ms status={status} '
        f"job={job} trace=0af7651916cd43dd"
    )


def test_every_atom_is_written_as_gunicorn_writes_it() -> None:
    atoms = "hlutrsmUqHbBfaTDMLp"
    log_format = " ".join(f"%({atom})s" for atom in atoms) + (
        ' %({user-agent}i)s %({X-Request-Id}o)s %({request_method}e)s %({nothing}i)s %(x)s "%({Host}I)s"'
    )
    for env in (environ(), {**environ(), "HTTP_REFERER": "https://example.org/"}):
        ours = access_line(GunicornLogger, log_format, env).getMessage()
        assert ours == access_line(StockLogger, log_format, env).getMessage()
        assert '\\"8\\"' in ours  # quotes in a value escaped, as gunicorn does


def test_the_json_access_line_reads_the_outcome_and_job_from_the_environ() -> None:
    env = environ(**{"flowhook.status": "done", "flowhook.job": "0a1b2c"})
    record = access_line(GunicornJsonLogger, access_log_format(), env)
    fields = {name: getattr(record, name, None) for name in ("outcome", "job", "trace", "status", "path")}
    assert fields == {
        "outcome": "done",
        "job": "0a1b2c",
        "trace": "0af7651916cd43dd",
        "status": 200,
        "path": "/webservice/echo",
    }
    assert record.getMessage() == "POST /webservice/echo 200"
    other = access_line(GunicornJsonLogger, access_log_format(), environ())
    assert not hasattr(other, "outcome")
    assert not hasattr(other, "job")
