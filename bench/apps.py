"""The baselines, served by gunicorn with Flowhook's own gunicorn.conf.py.

``gunicorn -c gunicorn.conf.py 'bench.apps:create_bare()'`` and ``'bench.apps:create_raw_rq()'``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask, request

from bench.jobs import noop
from bench.load import loyjoy_body
from flowhook.connection import connect, handler_queue
from flowhook.settings import Settings


def fixed_answer(namespace: str) -> dict[str, Any]:
    """What echo answers to the benchmark's body, built once: the baselines return it as a constant."""
    variables = json.loads(loyjoy_body({}))["variables"]
    status = {f"{namespace}_status": "done", f"{namespace}_job": "", f"{namespace}_error": ""}
    return {"data": {"variables": {**variables, **status}}}


def create_bare() -> Flask:
    """A minimal Flask view that parses the same body and returns a fixed answer: the ceiling."""
    app = Flask(__name__)

    answers = {name: fixed_answer(name) for name in ("echo_web", "echo_worker")}

    @app.post("/webservice/<name>")
    def call(name: str) -> dict[str, Any]:
        """Parse the body, answer a constant."""
        request.get_json()
        return answers[name]

    return app


def create_raw_rq() -> Flask:
    """A minimal Flask view that enqueues a trivial job and blocks on its result: RQ's own cost."""
    app = Flask(__name__)
    settings = Settings.from_env(os.environ)
    # The queue of a bench handler: Flowhook's workers serve it, and run any job function they are given.
    queue = handler_queue(settings, connect(settings), "echo_worker")
    answers = {name: fixed_answer(name) for name in ("echo_web", "echo_worker")}

    @app.post("/webservice/<name>")
    def call(name: str) -> dict[str, Any]:
        """Enqueue, wait for the result, answer."""
        body = request.get_json()
        job = queue.enqueue(noop, str(body["process_instance_id"]))
        job.latest_result(timeout=5)
        return answers[name]

    return app
