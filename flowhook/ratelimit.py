"""Rate limits per conversation and per client address, counted in Redis so every web process shares them."""

from __future__ import annotations

import contextlib
import hashlib
import json

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException

from flowhook import webservice
from flowhook.extension import current_flowhook
from flowhook.settings import Settings


def conversation() -> str:
    """The rate-limit key of a call: its conversation, as the body names it."""
    body = None  # not JSON, too large, chunked or absurdly deep: the view answers 400, 413 or 415
    if request.is_json:
        with contextlib.suppress(HTTPException, ValueError, RecursionError):
            # The view reads the same body (kept in the environ) and parses it strictly; this only
            # needs the id.
            body = json.loads(webservice.call_body(request.environ, current_flowhook().settings.max_body_bytes))
    instance = body.get("process_instance_id") if isinstance(body, dict) else None
    return f"conversation:{conversation_digest(str(instance))}"


def conversation_digest(process_instance_id: str) -> str:
    """A conversation's id as rate-limit keys hold it (a digest: ids are not key material)."""
    return hashlib.sha256(process_instance_id.encode()).hexdigest()[:32]


def storage_uri(settings: Settings) -> str:
    """The limits library's address of the Redis the jobs use, Sentinel included."""
    if settings.sentinels:
        return f"redis+sentinel://{settings.sentinels}/{settings.sentinel_master}"
    return settings.redis_url


def init_app(app: Flask, settings: Settings) -> None:
    """Limit the WebService endpoint as the settings say; an empty limit is no limit."""
    if not (settings.rate_limit_conversation or settings.rate_limit_address):
        return  # no limiter at all: not even its per-request hook
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=storage_uri(settings),
        # A Redis that is down must not take the calls down with it: count nothing then.
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        swallow_errors=True,
        strategy="fixed-window",
    )
    if settings.rate_limit_conversation:
        limiter.limit(settings.rate_limit_conversation, key_func=conversation)(webservice.bp)
    if settings.rate_limit_address:
        limiter.limit(settings.rate_limit_address)(webservice.bp)
