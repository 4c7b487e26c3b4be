"""The WSGI entry point: ``gunicorn wsgi:app``."""

from __future__ import annotations

import logging

from app import create_app
from flowhook.settings import Settings

logging.basicConfig(level=Settings.from_env().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
