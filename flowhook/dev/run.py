"""`make run`: Redis, the web service under gunicorn and RQ workers, in the foreground, reloaded on edit.

Settings come from the environment, then from ``.env`` for names the environment does not set.
Without ``REDIS_URL`` a private redis-server keeps its data in ``.flowhook/redis``; with it, that
Redis is used and nothing is started for it. What runs is recorded in ``FLOWHOOK_STATE_FILE``
(``.flowhook/run.json``) for the developer commands, and the record is removed on exit.

When a handler or Flowhook's own code changes, the new code is checked first: broken, it is
reported and the running version keeps serving; sound, web and every worker are stopped together
and started again, so one version of the code serves at a time. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values
from watchfiles import Change, PythonFilter, watch

from flowhook import logs
from flowhook.dev import runfile
from flowhook.dev.redis_server import EmbeddedRedis
from flowhook.exceptions import FlowhookError
from flowhook.settings import Settings

ROOT = Path(__file__).resolve().parents[2]  # the project: flowhook/dev/<this file>
DATA_DIRECTORY = Path(".flowhook/redis")
ENV_FILE = Path(".env")
# Flowhook's own code, watched with the handlers: a change to any of it restarts web and workers.
OWN_CODE = (ROOT / "flowhook", ROOT / "workers", ROOT / "app.py", ROOT / "wsgi.py", ROOT / "gunicorn.conf.py")
# How long the stack may take to stop. honcho kills what is left 5 s after asking it to stop (so
# a job running at a reload ends then, and is answered "interrupted"); this is well beyond that.
STOP_TIMEOUT = 15.0
# How often (milliseconds) the watcher comes back without a change, to notice a stack that ended.
WATCH_TIMEOUT_MS = 500


def main(argv: list[str] | None = None) -> int:
    """Run everything until Ctrl-C; 2 when it cannot start (a message says why), else 0."""
    parser = argparse.ArgumentParser(prog="python -m flowhook.dev.run", description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="RQ workers to start (default 2)")
    parser.add_argument(
        "--data-dir", type=Path, default=DATA_DIRECTORY, help=f"private Redis's files (default {DATA_DIRECTORY})"
    )
    parser.add_argument(
        "--env-file", type=Path, default=ENV_FILE, help=f"settings for names the environment lacks (default {ENV_FILE})"
    )
    args = parser.parse_args(argv)
    # Ctrl-C or SIGTERM at any moment, even while starting, ends in the same orderly stop.
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    environment = with_env_file(os.environ, args.env_file)
    try:
        settings = Settings.from_env(environment)
    except FlowhookError as error:
        say(environment, str(error), error=True)
        return 2
    state_file = Path(settings.state_file)
    problem = already_running(state_file) or port_in_use(settings.host, settings.port)
    if problem:
        say(environment, problem, error=True)
        return 2
    handlers = check_code(environment)
    if handlers is None:
        return 2
    if stopping.is_set():
        return 0

    redis = None
    if not environment.get("REDIS_URL"):
        redis = EmbeddedRedis(args.data_dir)
        try:
            environment["REDIS_URL"] = redis.start()
        except RuntimeError as error:
            say(environment, str(error), error=True)
            return 2
        say(environment, f"private redis-server at {redis.url}, data in {args.data_dir}/")
    run = runfile.RunState(os.getpid(), environment["REDIS_URL"], settings.host, settings.port)
    runfile.write(state_file, run)
    try:
        say(environment, f"serving {handlers} at {run.url}/webservice/<handler>")
        if settings.host not in ("127.0.0.1", "localhost", "::1"):
            unprotected = "" if settings.tokens else " and FLOWHOOK_TOKENS is not set: anyone there can call"
            say(environment, f"listening on {settings.host}: other machines can reach it{unprotected}")
        say(environment, "reloads when a handler or Flowhook's code changes; Ctrl-C stops")
        Supervisor(environment, args.workers, watched_paths(settings), stopping).run()
    finally:
        runfile.remove(state_file)
        if redis is not None:
            redis.stop()
    return 0


def with_env_file(environ: Mapping[str, str], env_file: Path) -> dict[str, str]:
    """The environment with ``.env``'s settings added where the environment does not set them.

    The environment wins, as it does for the ``flask`` commands (which read ``.env`` too):
    ``PORT=9000 make run`` overrides ``.env``'s PORT.
    """
    from_file = dotenv_values(env_file) if env_file.is_file() else {}
    return {**{name: value for name, value in from_file.items() if value is not None}, **environ}


def already_running(state_file: Path) -> str | None:
    """Why this `make run` must not start when another one serves from this folder, else None."""
    running = runfile.running(state_file)
    if running is None:
        return None
    return f"`make run` is already running here (pid {running.pid}, {running.url}); stop it first (Ctrl-C)"


def port_in_use(host: str, port: int) -> str | None:
    """Why gunicorn could not listen on ``host:port``, found before anything starts; else None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        # As gunicorn binds: a port left in TIME_WAIT by the last run is free to use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return (
                f"cannot listen on {host}:{port}: {error.strerror}; stop what uses the port "
                f"(`lsof -i :{port}` shows it) or choose another one: PORT={port + 1} make run"
            )
    return None


def say(environment: Mapping[str, str], message: str, error: bool = False) -> None:
    """One line of make run's own, on stderr for an error: text, or JSON as its processes' lines are."""
    if environment.get("FLOWHOOK_LOG_FORMAT") == "json":
        now = time.strftime("%Y-%m-%d %H:%M:%S")  # as the processes' own JSON lines write it
        record = {"time": now, "level": "ERROR" if error else "INFO", "message": message}
        line = logs.json_line("make run", json.dumps(record))
    else:
        line = f"flowhook: {message}"
    print(line, file=sys.stderr if error else sys.stdout, flush=True)


def check_code(environment: Mapping[str, str]) -> str | None:
    """The handlers' names when settings, handlers and Flowhook's code load; None when they do not.

    It runs in a new process, as web and workers will: this one keeps the code it started with.
    What is broken goes to stderr.
    """
    command = [sys.executable, "-m", "flowhook.dev.stack", "--check"]
    checked = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        sys.stderr.write(checked.stderr)
        sys.stderr.flush()
        return None
    return checked.stdout.strip()


def watched_paths(settings: Settings) -> list[Path]:
    """The handlers package's folder and Flowhook's own code."""
    spec = importlib.util.find_spec(settings.handlers_package)
    handler_folders = [Path(folder) for folder in (spec.submodule_search_locations or [])] if spec else []
    return [path for path in (*handler_folders, *OWN_CODE) if path.exists()]


def describe(changes: Iterable[tuple[Change, str]]) -> str:
    """The changed files, as a person reads them."""
    names = sorted({_shown(Path(path)) for _, path in changes})
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _shown(path: Path) -> str:
    """``path`` relative to the project's folder when it lies in it, else whole."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


class Supervisor:
    """Runs the stack (``flowhook.dev.stack``) and starts it anew on a change of the code.

    Args:
        environment: The stack's environment, with the Redis to use.
        workers: How many RQ workers the stack runs.
        paths: What to watch for changes.
        stopping: Set when it is time to stop everything.
    """

    def __init__(
        self, environment: Mapping[str, str], workers: int, paths: list[Path], stopping: threading.Event
    ) -> None:
        self.environment = dict(environment)
        self.workers = workers
        self.paths = paths
        self.stopping = stopping
        self.stack: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        """Serve until ``stopping`` is set, restarting on changes; the stack is stopped on the way out."""
        if self.stopping.is_set():
            return
        self._start()
        try:
            for changes in watch(
                *self.paths,
                watch_filter=PythonFilter(),
                stop_event=self.stopping,
                rust_timeout=WATCH_TIMEOUT_MS,
                yield_on_timeout=True,
                raise_interrupt=False,
            ):
                self._notice_an_ended_stack()
                if changes:
                    self._reload(changes)
        finally:
            self._stop_stack()

    def _start(self) -> None:
        command = [sys.executable, "-m", "flowhook.dev.stack", "--workers", str(self.workers)]
        # A session of its own: Ctrl-C reaches the stack once, through _stop_stack, not also
        # straight from the terminal (twice would make RQ workers abandon their jobs).
        self.stack = subprocess.Popen(command, env=self.environment, start_new_session=True)

    def _stop_stack(self) -> None:
        if self.stack is None:
            return
        if self.stack.poll() is None:
            self.stack.send_signal(signal.SIGINT)  # honcho stops each part, and kills it 5 s later
            try:
                self.stack.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.stack.kill()
                self.stack.wait()
        self.stack = None

    def _notice_an_ended_stack(self) -> None:
        if self.stack is not None and self.stack.poll() is not None:
            say(
                self.environment,
                f"the service stopped (exit {self.stack.returncode}); fix what the log above says "
                "and save: it starts again (Ctrl-C quits)",
                error=True,
            )
            self.stack = None

    def _reload(self, changes: set[tuple[Change, str]]) -> None:
        say(self.environment, f"{describe(changes)} changed; checking the code")
        handlers = check_code(self.environment)
        if handlers is None:
            still = "the last good version keeps serving" if self.stack is not None else "nothing serves"
            say(self.environment, f"not reloaded, {still}; fix it and save", error=True)
            return
        # Said first: honcho's own "SIGINT received ... sending SIGTERM" lines follow, and would
        # otherwise read as if someone had pressed Ctrl-C.
        say(self.environment, f"restarting web and workers: serving {handlers}")
        self._stop_stack()
        self._start()


if __name__ == "__main__":
    sys.exit(main())
