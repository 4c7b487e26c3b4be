"""gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from __future__ import annotations

from flowhook import defaults
from flowhook.settings import Settings

_settings = Settings.from_env()

bind = f"0.0.0.0:{_settings.port}"
# Every waiting call holds a thread for up to its budget: threads, not processes, carry the waits.
worker_class = "gthread"
workers = _settings.web_processes
threads = _settings.web_threads
# A call never takes longer than the largest budget; past this the worker is surely stuck.
timeout = int(defaults.MAX_BUDGET) + 15
graceful_timeout = int(defaults.MAX_BUDGET) + 5
accesslog = "-"
# gunicorn's control socket sits at one path per user: several instances on a host (or a read-only
# home in a container) would trip over it, and Flowhook does not use it.
control_socket_disable = True
