"""The Flask app factory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from flowhook import answers, apidocs, cli, extension, health, http_errors, monitoring, openapi, ratelimit, webservice
from flowhook.connection import connect
from flowhook.dispatch import Dispatcher
from flowhook.envelope_limits import Limits
from flowhook.exceptions import HandlerModuleError
from flowhook.extension import Flowhook
from flowhook.inline import runner_for_this_process
from flowhook.jobstore import JobStore
from flowhook.registry import Registry, discover
from flowhook.settings import Settings


def create_app(test_config: Mapping[str, Any] | None = None, registry: Registry | None = None) -> Flask:
    """Create the Flowhook web app.

    Args:
        test_config: Settings by their environment names (``REDIS_URL``, ``FLOWHOOK_BUDGET``, ...)
            over the process environment, plus Flask config such as ``TESTING``.
        registry: The handlers to serve; by default those found in ``FLOWHOOK_HANDLERS``.
    """
    app = Flask(__name__)
    overrides = {key: str(value) for key, value in (test_config or {}).items()}
    settings = Settings.from_env({**os.environ, **overrides})
    app.config.from_mapping(MAX_CONTENT_LENGTH=settings.max_body_bytes)
    if test_config is not None:
        app.config.from_mapping(test_config)

    registry = registry if registry is not None else _discover(settings)
    store = JobStore(connect(settings), settings)
    # Without gevent: one thread per concurrent call, and room for overrun attempts that go on.
    inline = runner_for_this_process(size=2 * settings.web_connections)
    flowhook = Flowhook(
        settings=settings,
        registry=registry,
        store=store,
        limits=Limits(settings.max_depth, settings.max_variables, settings.max_value_length),
        dispatcher=Dispatcher(store, inline, outage_limit=settings.outage_limit, turn_limit=settings.turn_limit),
        openapi_document=openapi.build(registry, settings),
        metrics_registry=monitoring.exposition_registry(store, registry, settings),
    )
    extension.init_app(app, flowhook)
    answers.init_app(app)
    http_errors.init_app(app)
    cli.init_app(app)
    health.init_app(app)
    openapi.init_app(app)
    apidocs.init_app(app, settings)
    webservice.init_app(app)
    monitoring.init_app(app, flowhook)
    ratelimit.init_app(app, settings)
    if settings.trusted_proxies:
        # Behind a proxy, the client address is the one the trusted proxies put in X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    return app


def _discover(settings: Settings) -> Registry:
    """The handlers: a broken module stops the service, but not a `flask --app app` command.

    A command (but ``flask run``, which serves) goes on without a broken module, so that an
    operator's ``jobs`` and ``forget``, ``new`` and ``--help`` still work; ``handlers`` and
    ``call`` name what is wrong with it (``Registry.broken``).
    """
    context = click.get_current_context(silent=True)
    if context is not None and context.command.name != "run":
        return discover(settings, keep_going=True)
    try:
        return discover(settings)
    except HandlerModuleError as error:
        if context is not None:  # `flask run`: one line, not a traceback
            raise click.ClickException(str(error)) from None
        raise
