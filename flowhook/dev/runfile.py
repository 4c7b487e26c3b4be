"""What `make run` started, written to a file so that the developer commands find it.

`make run` runs its private Redis on a new port at every start; ``flask --app app forget``,
``call``, ``jobs`` and ``rq info -c flowhook.rq_config`` read the file (``FLOWHOOK_STATE_FILE``,
by default ``.flowhook/run.json``) when ``REDIS_URL`` is not set, rather than guess a Redis that may
be someone else's.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from flowhook.exceptions import FlowhookError
from flowhook.settings import Settings


class NoServiceError(FlowhookError):
    """Neither ``REDIS_URL`` nor a running `make run` says where the service is."""


@dataclass(frozen=True)
class RunState:
    """A running `make run`: its process, its Redis and where the web service listens."""

    pid: int
    redis_url: str
    host: str
    port: int

    @property
    def url(self) -> str:
        """The web service's base URL, as a client on this machine reaches it."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


def write(path: Path, state: RunState) -> None:
    """Record ``state``; written whole (to a temporary file, then renamed) so no reader sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(asdict(state)) + "\n")
    partial.replace(path)


def remove(path: Path) -> None:
    """Forget the record when `make run` stops."""
    path.unlink(missing_ok=True)


def running(path: Path) -> RunState | None:
    """The `make run` recorded in ``path`` while its process lives; None when there is none.

    A record whose process is gone (`make run` was killed, the machine restarted) is not a
    running service: it is ignored, so no command talks to whatever now listens on its port.
    """
    try:
        data = json.loads(path.read_text())
        state = RunState(pid=int(data["pid"]), redis_url=str(data["redis_url"]), host=str(data["host"]),
                         port=int(data["port"]))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if _is_make_run(state.pid) else None


def _is_make_run(pid: int) -> bool:
    """Whether ``pid`` is a live `make run`, not a process that got its number since."""
    command_line = Path(f"/proc/{pid}/cmdline")
    if command_line.parent.parent.is_dir():  # Linux: the process's command line tells
        try:
            return b"dev.run" in command_line.read_bytes()  # `make run`: python -m dev.run
        except OSError:
            return False
    try:  # elsewhere, that the process lives
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, run by another user
    return True


def service_redis_url(settings: Settings) -> str:
    """The Redis of the service a developer command should act on.

    ``REDIS_URL`` when it was set, else the private Redis of the `make run`
    recorded in the state file; never the default address, where another Redis may listen.

    Raises:
        NoServiceError: when neither says where the service's Redis is.
    """
    if "REDIS_URL" in settings.given:
        return settings.redis_url
    state = running(Path(settings.state_file))
    if state is None:
        raise NoServiceError(
            f"no Flowhook is running here ({settings.state_file} names no live `make run`) and REDIS_URL is "
            "not set: start `make run` in this folder, or set REDIS_URL to the service's Redis"
        )
    return state.redis_url
