"""gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from __future__ import annotations

import os
import sys
from typing import Any

# gevent patches each web process as gunicorn starts it. Patching here first, before this file
# imports redis (whose asyncio part holds ssl names of its own), keeps gevent from warning in
# every process that the patch came too late; the master only waits for signals and children.
from gevent import monkey

monkey.patch_all()

from flowhook import defaults, logs, multiproc  # noqa: E402 - after the patch, as gevent asks
from flowhook.checks import warn_about_redis  # noqa: E402
from flowhook.connection import connect  # noqa: E402
from flowhook.exceptions import ConfigurationError  # noqa: E402
from flowhook.settings import Settings, unknown_setting_warnings  # noqa: E402


def _make_run_env_file() -> dict[str, str]:
    """Under `make run`, ``.env``'s settings as saved now; none elsewhere (flowhook/dev/envfile.py)."""
    if "MAKE_RUN_ENV_FILE" not in os.environ:
        return {}
    from flowhook.dev import envfile  # noqa: PLC0415 - python-dotenv: make run installs it, the image does not

    return envfile.named_settings(os.environ)


# gunicorn runs this file again on a reload (SIGHUP, which `make run` sends when a handler or .env is
# saved): it sets raw_env in its environment before it starts web processes, and unsets it before
# the next reload, so the new web processes serve with .env as saved last.
_env_file = _make_run_env_file()
raw_env = [f"{name}={value}" for name, value in _env_file.items()]
try:
    _settings = Settings.from_env({**_env_file, **os.environ})
except ConfigurationError as error:  # one line (JSON with FLOWHOOK_LOG_FORMAT=json), not gunicorn's traceback
    logs.startup_error(None, str(error))
    sys.exit(2)

# This machine only unless FLOWHOOK_HOST opens it up: the container image sets 0.0.0.0, where
# compose decides what is published.
bind = f"[{_settings.host}]:{_settings.port}" if ":" in _settings.host else f"{_settings.host}:{_settings.port}"
# Every call waits on Redis or on a handler's I/O for up to its budget. gevent makes those waits
# cheap (a greenlet each, not a thread) and lets plain synchronous handlers in "web" mode run
# concurrently; CPU-bound work belongs in the workers.
worker_class = "gevent"
workers = _settings.web_processes
worker_connections = _settings.web_connections
# A call never takes longer than the largest budget, a poll than the largest poll wait (under
# LoyJoy's 20 s); past this the worker is surely stuck. A stop lets the longest poll finish.
timeout = int(max(defaults.MAX_BUDGET, defaults.LIMIT_POLL_WAIT)) + 15
graceful_timeout = int(max(defaults.MAX_BUDGET, defaults.LIMIT_POLL_WAIT)) + 5
# An idle keep-alive connection stays open longer than a proxy in front keeps it (defaults.py):
# gunicorn's own 2 s would close connections the proxy still reuses, and its next request would
# meet a reset (a 502 at the proxy).
keepalive = _settings.keepalive
accesslog = "-"
# One line per call: what it asked, its outcome and job (WSGI environ keys the view sets; `-` for
# other requests), LoyJoy's trace id (or a request id of Flowhook's own when LoyJoy sends none: the
# X-Request-Id answer header) and the time taken. No query string, no body, so no personal data.
access_log_format = (
    '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms status=%({flowhook.status}e)s '
    "job=%({flowhook.job}e)s trace=%({x-request-id}o)s"
)
# gunicorn's control socket sits at one path per user: several instances on a host (or a read-only
# home in a container) would trip over it, and Flowhook does not use it.
control_socket_disable = True


def when_ready(server: Any) -> None:
    """Once, in the master at start: warn about misspelled settings and a Redis that could lose jobs."""
    for warning in unknown_setting_warnings():
        server.log.warning(warning)
    warn_about_redis(connect(_settings), server.log)


# Logs (flowhook/logs.py): gunicorn's access line above, computing only the atoms its format uses
# (gunicorn's own logger builds a dictionary of every header and environ key for each line); with
# FLOWHOOK_LOG_FORMAT=json, gunicorn's lines and the access line as JSON.
logger_class = logs.GunicornJsonLogger if _settings.log_format == "json" else logs.GunicornLogger


# Metrics (flowhook/multiproc.py): every web process counts into one directory, emptied at start
# and named before any process imports prometheus_client (the master never does; its processes
# import it with the app, after the fork).
def on_starting(_server: Any) -> None:
    """Once, in the master, before the first web process starts: the shared metrics directory."""
    multiproc.prepare()


def child_exit(_server: Any, worker: Any) -> None:
    """A web process ended: its live metrics files go."""
    multiproc.process_gone(worker.pid)


def on_exit(_server: Any) -> None:
    """The master stops: remove the metrics directory if it made it."""
    multiproc.remove()
