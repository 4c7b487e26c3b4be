"""Waits about 1 s on loopback I/O, in an RQ worker."""

from __future__ import annotations

from bench.handlers._io import wait_on_io

handle = wait_on_io
