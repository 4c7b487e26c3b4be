"""The WSGI entry point: ``gunicorn wsgi:app``."""

from __future__ import annotations

import sys

from app import create_app
from flowhook import logs
from flowhook.exceptions import FlowhookError
from flowhook.settings import Settings

# gunicorn's exit status for "App failed to load": its master stops rather than start the process
# again and again on code that cannot load.
APP_LOAD_ERROR = 4

_settings: Settings | None = None
try:
    _settings = Settings.from_env()
    logs.configure(_settings)
    app = create_app()
except FlowhookError as error:  # a bad setting or a broken handler module: one line, not a traceback
    logs.startup_error(_settings, str(error))
    sys.exit(APP_LOAD_ERROR)
