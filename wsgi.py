"""The WSGI entry point: ``gunicorn wsgi:app``."""

from __future__ import annotations

from app import create_app
from flowhook import logs
from flowhook.settings import Settings

logs.configure(Settings.from_env())
app = create_app()
