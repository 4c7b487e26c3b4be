"""`make run`'s settings: the environment, then ``.env`` for the names the environment does not set.

`make run` names its ``.env`` in ``MAKE_RUN_ENV_FILE`` for the processes it starts, and each of them
reads the file as it starts: a web process started by a reload (gunicorn.conf.py) and a worker
started again by ``flowhook.dev.respawn`` serve with ``.env`` as it was saved last, not as it was
when `make run` started. The name lacks the ``FLOWHOOK_`` prefix: it is not a setting of the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

VARIABLE = "MAKE_RUN_ENV_FILE"


def with_env_file(environ: Mapping[str, str], env_file: Path) -> dict[str, str]:
    """The environment with ``.env``'s settings added where the environment does not set them.

    The environment wins, as it does for the ``flask`` commands (which read ``.env`` too):
    ``PORT=9000 make run`` overrides ``.env``'s PORT.
    """
    return {**from_env_file(environ, env_file), **environ}


def from_env_file(environ: Mapping[str, str], env_file: Path) -> dict[str, str]:
    """``.env``'s settings for the names ``environ`` does not set; none when there is no such file."""
    values = dotenv_values(env_file) if env_file.is_file() else {}
    return {name: value for name, value in values.items() if value is not None and name not in environ}


def named_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings of the ``.env`` that ``environ`` names in ``MAKE_RUN_ENV_FILE`` (none outside `make run`)."""
    env_file = environ.get(VARIABLE)
    return from_env_file(environ, Path(env_file)) if env_file else {}
