"""Flowhook: answer LoyJoy WebService calls inline, or finish them in RQ workers while the flow polls.

Handlers import :class:`Call`, :class:`HandlerError` and :class:`RetryableError` from here.

Where things are (the web side; the worker side is the ``workers`` package):

- A call is answered in ``webservice.py`` (the view: credentials, body, envelope), then
  ``dispatch.py`` (poll, run inline, or start a job and wait within the budget); ``turns.py``:
  whether a pending answer tells the flow to poll again at once or to ask the user.
- ``contract.py``: the WebService envelope and answer; ``call.py``: what a handler receives.
- ``envelope_parser.py``: a call's body read into its envelope: ``strict_json.py`` (the JSON), then
  ``envelope_fast_path.py`` (a valid call, in plain Python) or ``envelope_schema.py`` (the
  marshmallow schema, which words a refusal); ``envelope_limits.py``: how much a call may carry.
- ``registry.py``: handler discovery and per-handler ``SETTINGS``; ``inline.py``, ``offload.py``:
  running ``web`` handlers in the web process.
- ``jobstore.py``: the web side of the queue (start a job once, find it, wait for its result);
  ``dedupe.py``: one job per identical call; ``connection.py``: Redis connections and queues;
  ``outage.py``: riding out a Redis that is away; ``keys.py``: Redis key names.
- ``settings.py`` and ``defaults.py``: every setting (add one in both); ``exceptions.py``.
- ``extension.py``: the app's state, read with ``current_flowhook()``; ``http_errors.py``,
  ``auth.py``, ``ratelimit.py``, ``health.py``, ``openapi.py``: the rest of the HTTP surface.
- ``metrics.py``, ``monitoring.py``, ``multiproc.py``, ``jobfigures.py``, ``logs.py``,
  ``checks.py``: what operators see.
- ``cli.py``: the operator commands (``flask --app app handlers | jobs | forget``).
- ``dev/``: development helpers only (``new`` and ``call``, ``dev.testing.run`` for handler
  tests); not in the production image. `make run` starts the app and the workers, so it is above
  them, in the project's top-level ``dev/``: nothing here imports ``app``, ``workers`` or ``dev``.
"""

from __future__ import annotations

from flowhook.call import Call
from flowhook.exceptions import HandlerError, RetryableError

__all__ = ["Call", "HandlerError", "RetryableError"]
