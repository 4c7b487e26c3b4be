"""The endpoint LoyJoy's WebService module calls."""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Request, abort, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, Unauthorized
from werkzeug.wsgi import get_content_length

from flowhook import metrics
from flowhook.auth import authorized, presented_token
from flowhook.contract import FAILED, INVALID, MalformedCallError, answer, flow_value
from flowhook.envelope_parser import parse_envelope
from flowhook.extension import current_flowhook
from flowhook.jobstore import JOB_ID
from flowhook.logs import JOB_KEY, OUTCOME_KEY, TRACE_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

bp = Blueprint("webservice", __name__)

CHALLENGE = WWWAuthenticate("bearer", {"realm": "flowhook"})
# LoyJoy's trace id (B3: 16 or 32 hex digits); anything else is not logged as one.
TRACE_ID = re.compile(r"[0-9a-fA-F]{16,32}")
# Request ids, from a generator of Flowhook's own (a handler may seed the module's), seeded anew in
# every forked process (gunicorn's workers).
_request_ids = random.Random()  # noqa: S311 - an id must be unique, not secret
os.register_at_fork(after_in_child=_request_ids.seed)
# Where the call's body is kept once read (call_body), for the view and the rate limiter alike.
BODY_KEY = "flowhook.body"


@bp.post("/webservice/<name>")
def call(name: str) -> dict[str, Any]:
    """Answer one WebService call with the handler's status variables."""
    started = time.monotonic()
    metrics.new_call()  # no path noted yet: a keep-alive connection serves several calls in one greenlet
    flowhook = current_flowhook()
    settings = flowhook.settings
    # Credentials before anything else, so that a caller without them learns nothing, not even
    # which handlers exist.
    # The request itself, looked up once rather than through the context-local proxy per attribute.
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    tokens = settings.tokens_for(name)
    if tokens and not authorized(presented_token(req), tokens):
        raise Unauthorized(description="missing or invalid credentials", www_authenticate=CHALLENGE)
    handler = flowhook.registry.get(name)
    if handler is None:
        abort(404, description=f"no handler named {name[:100]!r}")
    # The plain type is taken as it is; any other (with a charset, say) is parsed by werkzeug.
    if req.environ.get("CONTENT_TYPE") != "application/json" and not req.is_json:
        abort(415, description="send the call as Content-Type: application/json")
    try:
        envelope = parse_envelope(call_body(req.environ, settings.max_body_bytes), flowhook.limits)
    except MalformedCallError as error:
        abort(error.status, description=str(error))
    if settings.log_values:  # only when switched on: variables are personal data
        log.info("handler=%s instance=%s variables=%r", name, envelope.process_instance_id, dict(envelope.variables))
    outcome = flowhook.dispatcher.dispatch(handler, envelope, started)
    if settings.metrics:
        metrics.observe_call(handler, envelope, outcome, started)  # flowhook/metrics.py: counts and latency
    if outcome.status in (FAILED, INVALID):
        log.info("handler=%s trace=%s %s: %s", handler.name, req.environ[TRACE_KEY], outcome.status, outcome.error)
    # Read by the access log line (gunicorn.conf.py): one line per call with its outcome, and the
    # job a poll asked about even once the answer no longer names it, to match the worker's lines.
    polled = flow_value(envelope.variables.get(handler.job_variable))
    req.environ[OUTCOME_KEY] = outcome.status
    req.environ[JOB_KEY] = outcome.job_id or (polled if JOB_ID.fullmatch(polled) else "-")
    return answer(handler.namespace, outcome)


def call_body(environ: WSGIEnvironment, max_length: int) -> bytes:
    """The call's body, read once from the server's input and kept in the environ for a second reader.

    Read straight from ``wsgi.input``: werkzeug's stream wrappers cost every call more. As werkzeug
    does, a Content-Length over ``max_length`` is refused before anything is read, and a body
    without one is empty. Read so, the input is spent: ``request.get_data()`` would find nothing
    after it; read the body through this function.

    Raises:
        BadRequest: a chunked body without Content-Length (it could be endless, and is not read),
            or a body shorter than its Content-Length.
        RequestEntityTooLarge: a Content-Length over ``max_length``.
    """
    body: bytes | None = environ.get(BODY_KEY)
    if body is not None:
        return body
    length = get_content_length(environ)
    if length is None:
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise BadRequest("send the body with a Content-Length; chunked bodies are not read")
        body = b""
    elif length > max_length:
        raise RequestEntityTooLarge()
    else:
        body = environ["wsgi.input"].read(length)
        if len(body) < length:
            raise BadRequest("the body ended before its Content-Length (the client went away?)")
    environ[BODY_KEY] = body
    return body


class RequestIds:
    """WSGI middleware: every request gets a trace id for its log lines, and every answer names it.

    The id is LoyJoy's X-B3-TraceId, or one of Flowhook's own; the answer says it in X-Request-Id,
    errors included. A middleware rather than Flask request hooks: the hooks cost every call more.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        sent = environ.get("HTTP_X_B3_TRACEID", "")
        # A request id needs to be unique, not secret: no system call for it.
        trace = sent if TRACE_ID.fullmatch(sent) else f"{_request_ids.getrandbits(64):016x}"
        environ[TRACE_KEY] = trace

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.append(("X-Request-Id", trace))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def init_app(app: Flask) -> None:
    """Serve the endpoint, and give every request a trace id."""
    app.register_blueprint(bp)
    app.wsgi_app = RequestIds(app.wsgi_app)  # type: ignore[method-assign]
