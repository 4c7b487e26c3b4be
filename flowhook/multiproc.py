"""prometheus-client's multiprocess mode under gunicorn: one directory of counts for every web process.

Each gunicorn process writes its counts to files of its own in ``PROMETHEUS_MULTIPROC_DIR``; a
scrape, whichever process answers it, sums them all (``flowhook.metrics``). The client's rules:
the variable is set before prometheus_client is first imported (it picks its storage then), so
the master calls :func:`prepare` before it imports anything that could import it, and the
processes it forks inherit both; the directory is emptied at start, or counts of an earlier run
would be added in; and a process that ends is marked dead (gunicorn's ``child_exit``), so that its
live gauges go. Its counters stay, by design: a counter must not drop when a process is replaced.

This module imports nothing of prometheus_client at the top, for the master's sake.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def prepare(environ: MutableMapping[str, str] = os.environ) -> tuple[Path, bool]:
    """Make the shared directory empty and name it in ``environ``; returns it, and whether it was made here.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is used (and emptied of the client's files); else a
    new temporary directory, to be removed by :func:`remove` when the master exits.

    Raises:
        RuntimeError: when prometheus_client is imported already: its counts would not be shared.
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError(f"set {MULTIPROC_DIR} before prometheus_client is imported")
    given = environ.get(MULTIPROC_DIR)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return directory, False
    directory = Path(tempfile.mkdtemp(prefix="flowhook-metrics-"))
    environ[MULTIPROC_DIR] = str(directory)
    return directory, True


def process_gone(pid: int) -> None:
    """A web process ended: drop its live gauges (gunicorn's ``child_exit``)."""
    # Imported here: the master must not import prometheus_client before prepare() ran.
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # the client's is unannotated


def remove(directory: Path) -> None:
    """Remove a directory :func:`prepare` made, once the master exits."""
    shutil.rmtree(directory, ignore_errors=True)
