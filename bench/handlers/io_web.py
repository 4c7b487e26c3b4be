"""Waits about 1 s on loopback I/O, inline in the web process."""

from __future__ import annotations

from bench.handlers._io import wait_on_io

SETTINGS = {"runs_in": "web"}
handle = wait_on_io
