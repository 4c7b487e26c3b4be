"""Every error answered as JSON: LoyJoy and people debugging a flow never see HTML or a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

log = logging.getLogger(__name__)


def json_error(error: HTTPException) -> tuple[Response, int]:
    """Answer an HTTP error as ``{"error": {"code", "name", "message"}}``, keeping its headers."""
    code = error.code or 500
    response = jsonify({"error": {"code": code, "name": error.name, "message": error.description}})
    for name, value in error.get_headers():
        if name.lower() != "content-type":  # e.g. Allow for 405, WWW-Authenticate for 401
            response.headers[name] = value
    return response, code


def too_large(error: RequestEntityTooLarge) -> tuple[Response, int]:
    """Answer 413 naming the limit that was passed, so whoever configures the flow knows what to trim."""
    if error.description == RequestEntityTooLarge.description:  # Werkzeug's: the body size
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        error = RequestEntityTooLarge(description=f"the body is larger than the limit of {limit} bytes")
    return json_error(error)


def unexpected_error(error: Exception) -> tuple[Response, int]:
    """Log a bug with its traceback and answer a bare 500, with nothing of the traceback."""
    log.exception("unexpected error: %s", type(error).__name__)
    return json_error(InternalServerError(description="internal error; see the service log"))


def init_app(app: Flask) -> None:
    """Register the JSON error handlers."""
    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.register_error_handler(HTTPException, json_error)
    app.register_error_handler(Exception, unexpected_error)
