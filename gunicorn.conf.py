"""gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from __future__ import annotations

import os

from flowhook import defaults
from flowhook.settings import Settings

_settings = Settings.from_env()

bind = f"0.0.0.0:{_settings.port}"
# Every waiting call holds a thread for up to its budget: threads, not processes, carry the waits.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("FLOWHOOK_THREADS", "32"))
# A call never takes longer than the largest budget; past this the worker is surely stuck.
timeout = int(defaults.MAX_BUDGET) + 15
graceful_timeout = int(defaults.MAX_BUDGET) + 5
accesslog = "-"
