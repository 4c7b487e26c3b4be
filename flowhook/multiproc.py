"""prometheus-client's multiprocess mode under gunicorn: one directory of counts for every web process.

Each gunicorn process writes its counts to files of its own in ``PROMETHEUS_MULTIPROC_DIR``; a
scrape, whichever process answers it, sums them all (``flowhook.monitoring``). Flowhook reads the
variable here only (:func:`shared_directory`); prometheus_client reads it too. The client's rules:
the variable is set before prometheus_client is first imported (it picks its storage then), so
the master, which never imports it, calls :func:`prepare` as it starts (gunicorn's
``on_starting``), and the processes it forks inherit the variable; the directory is emptied at
start, or counts of an earlier run would be added in; and a process that ends is marked dead
(gunicorn's ``child_exit``), so that its live gauges go. Its counters stay, by design: a counter
must not drop when a process is replaced.

This module imports nothing of prometheus_client at the top, for the master's sake.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

# The directory prepare() made (not an operator's), which remove() deletes.
_made: list[Path] = []


def shared_directory(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The directory every web process counts into; None when a process's counts are its own (no gunicorn)."""
    given = environ.get(MULTIPROC_DIR)
    return Path(given) if given else None


def prepare(environ: MutableMapping[str, str] = os.environ) -> Path:
    """Make the shared directory empty and name it in ``environ``.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is used (and emptied of the client's files); else a
    new temporary directory, deleted by :func:`remove` when the master exits.

    Raises:
        RuntimeError: when prometheus_client is imported already: its counts would not be shared.
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError(f"set {MULTIPROC_DIR} before prometheus_client is imported")
    directory = shared_directory(environ)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return directory
    directory = Path(tempfile.mkdtemp(prefix="flowhook-metrics-"))
    _made.append(directory)
    environ[MULTIPROC_DIR] = str(directory)
    return directory


def process_gone(pid: int) -> None:
    """A web process ended: drop its live gauges (gunicorn's ``child_exit``)."""
    # Imported here: the master must not import prometheus_client before prepare() ran.
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # the client's is unannotated


def remove() -> None:
    """Delete the directory :func:`prepare` made, once the master exits."""
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)
