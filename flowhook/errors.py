"""Every error answered as JSON: LoyJoy and people debugging a flow never see HTML or a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

log = logging.getLogger(__name__)


def json_error(error: HTTPException) -> tuple[Response, int]:
    """Answer an HTTP error as ``{"error": {"code", "name", "message"}}``."""
    code = error.code or 500
    body = {"error": {"code": code, "name": error.name, "message": error.description}}
    return jsonify(body), code


def too_large(_: RequestEntityTooLarge) -> tuple[Response, int]:
    """Answer 413 naming the limit, so whoever configures the flow knows what to trim."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return json_error(RequestEntityTooLarge(description=f"the body is larger than the limit of {limit} bytes"))


def unexpected_error(error: Exception) -> tuple[Response, int]:
    """Log a bug with its traceback and answer a bare 500, with nothing of the traceback."""
    log.exception("unexpected error: %s", type(error).__name__)
    return json_error(InternalServerError(description="internal error; see the service log"))


def init_app(app: Flask) -> None:
    """Register the JSON error handlers."""
    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.register_error_handler(HTTPException, json_error)
    app.register_error_handler(Exception, unexpected_error)
