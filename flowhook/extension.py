"""Flowhook's state in a Flask app: one object per app, read through one accessor.

The app factory builds it (``app.create_app``); views and commands read it with
``current_flowhook()``, as flaskr's views read their database with ``get_db()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from prometheus_client import CollectorRegistry

from flowhook.dispatch import Dispatcher
from flowhook.envelope_limits import Limits
from flowhook.jobstore import JobStore
from flowhook.registry import Registry
from flowhook.settings import Settings

EXTENSION = "flowhook"


@dataclass(frozen=True, slots=True)
class Flowhook:
    """What the views and commands of one app share.

    Attributes:
        settings: The validated settings.
        registry: The handlers served.
        store: Where worker jobs are started and found.
        limits: What a call may carry.
        dispatcher: Answers calls.
        openapi_document: The OpenAPI document served at ``/openapi.json``, built once.
        metrics_registry: What ``/metrics`` exposes.
    """

    settings: Settings
    registry: Registry
    store: JobStore
    limits: Limits
    dispatcher: Dispatcher
    openapi_document: dict[str, Any]
    metrics_registry: CollectorRegistry


def current_flowhook() -> Flowhook:
    """The Flowhook state of the app handling the current request or command."""
    flowhook: Flowhook = current_app.extensions[EXTENSION]
    return flowhook


def init_app(app: Flask, flowhook: Flowhook) -> None:
    """Attach ``flowhook`` to ``app``."""
    app.extensions[EXTENSION] = flowhook
