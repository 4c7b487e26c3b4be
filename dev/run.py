"""`make run`: Redis, the web service under gunicorn and RQ workers, in the foreground, reloaded on edit.

Settings come from the environment, then from ``.env`` for names the environment does not set.
Without ``REDIS_URL`` a private redis-server keeps its data in ``.flowhook/redis``; with it, that
Redis is used and nothing is started for it. What runs is recorded in ``FLOWHOOK_STATE_FILE``
(``.flowhook/run.json``) for the developer commands, and the record is removed on exit.

When a handler or ``.env`` changes, the new code and settings are checked first: broken, they are
reported and the running version keeps serving; sound, web and workers are reloaded without closing
the port. gunicorn's master keeps the listening socket and starts new web processes with the new
code and ``.env`` (SIGHUP) while the old ones finish their calls; a call arriving meanwhile waits
for a web process, it is not refused. Each worker finishes its running jobs, as on SIGTERM, and
starts again (``flowhook.dev.respawn``); queued jobs wait in Redis. A change to Flowhook's own code
(which gunicorn's master has loaded) stops web and workers together and starts them again: the
port is closed for those seconds. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
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

import psutil
from watchfiles import Change, PythonFilter, watch

from dev import stack
from flowhook import logs
from flowhook.dev import envfile, runfile
from flowhook.dev.redis_server import EmbeddedRedis
from flowhook.exceptions import FlowhookError
from flowhook.settings import Settings

ROOT = Path(__file__).resolve().parents[1]  # the project: dev/<this file>
DATA_DIRECTORY = Path(".flowhook/redis")
ENV_FILE = Path(".env")
# Flowhook's own code, watched with the handlers: a change to any of it restarts web and workers
# (gunicorn's master has imported part of it, which a reload would not replace), and the stack.
OWN_CODE = (
    ROOT / "flowhook",
    ROOT / "workers",
    ROOT / "app.py",
    ROOT / "wsgi.py",
    ROOT / "gunicorn.conf.py",
    ROOT / "dev",
)
# How long the stack may take to stop. honcho kills what is left 5 s after asking it to stop (so
# a job running at a reload ends then, and is answered "interrupted"); this is well beyond that.
STOP_TIMEOUT = 15.0
# How often (milliseconds) the watcher comes back without a change, to notice a stack that ended.
WATCH_TIMEOUT_MS = 500


def main(argv: list[str] | None = None) -> int:
    """Run everything until Ctrl-C; 2 when it cannot start (a message says why), else 0."""
    parser = argparse.ArgumentParser(prog="python -m dev.run", description=__doc__)
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
    environment = envfile.with_env_file(os.environ, args.env_file)
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
        if Settings.from_env(stack.web_environment(environment)).api_docs:
            say(environment, f"the API in a browser: {run.url}/docs")
        if settings.host not in ("127.0.0.1", "localhost", "::1"):
            unprotected = "" if settings.tokens else " and FLOWHOOK_TOKENS is not set: anyone there can call"
            say(environment, f"listening on {settings.host}: other machines can reach it{unprotected}")
        say(environment, "reloads when a handler, .env or Flowhook's code changes; Ctrl-C stops")
        # The stack reads .env itself (flowhook/dev/envfile.py), as saved at each reload; the Redis
        # recorded in the state file stays the one it uses.
        stack_environment = {
            **os.environ,
            "REDIS_URL": run.redis_url,
            envfile.VARIABLE: str(args.env_file.resolve()),
        }
        Supervisor(stack_environment, args.workers, watched_paths(settings), stopping).run()
    finally:
        runfile.remove(state_file)
        if redis is not None:
            redis.stop()
    return 0


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
    command = [sys.executable, "-m", "dev.stack", "--check"]
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
    """Runs the stack (``dev.stack``), reloads it when a handler or ``.env`` changes and
    starts it anew when Flowhook's own code does.

    Args:
        environment: The stack's environment, with the Redis to use and the ``.env`` to read.
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
        self.env_file_settings = envfile.named_settings(self.environment)

    def run(self) -> None:
        """Serve until ``stopping`` is set, reloading on changes; the stack is stopped on the way out."""
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
                # .env is read at every turn rather than watched: an editor may replace the file,
                # and a watch would follow the file it replaced.
                saved = envfile.named_settings(self.environment)
                env_file_changed, self.env_file_settings = saved != self.env_file_settings, saved
                if changes or env_file_changed:
                    what = ", ".join(filter(None, (".env" if env_file_changed else "", describe(changes))))
                    own_code = any(_is_own_code(Path(path)) for _, path in changes)
                    self._reload(what, own_code)
        finally:
            self._stop_stack()

    def _settings_now(self) -> dict[str, str]:
        """The stack's environment with ``.env`` as saved now, as its processes read it."""
        return {**self.env_file_settings, **self.environment}

    def _start(self) -> None:
        command = [sys.executable, "-m", "dev.stack", "--workers", str(self.workers)]
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
                self._settings_now(),
                f"the service stopped (exit {self.stack.returncode}); fix what the log above says "
                "and save: it starts again (Ctrl-C quits)",
                error=True,
            )
            self.stack = None

    def _reload(self, what: str, own_code: bool) -> None:
        settings = self._settings_now()
        say(settings, f"{what} changed; checking the code")
        handlers = check_code(settings)
        if handlers is None:
            still = "the last good version keeps serving" if self.stack is not None else "nothing serves"
            say(settings, f"not reloaded, {still}; fix it and save", error=True)
            return
        if self.stack is not None and not own_code:
            say(settings, f"reloading web and workers: serving {handlers}; what is under way finishes first")
            self._reload_parts()
            return
        # Said first: honcho's own "SIGINT received ... sending SIGTERM" lines follow, and would
        # otherwise read as if someone had pressed Ctrl-C.
        say(settings, f"restarting web and workers: serving {handlers}")
        self._stop_stack()
        self._start()

    def _reload_parts(self) -> None:
        """SIGHUP to gunicorn's master and to each worker's respawn, which reload as they document."""
        if self.stack is None:
            return
        for process in psutil.Process(self.stack.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a process that has just ended
                if _reloads_on_sighup(process):
                    process.send_signal(signal.SIGHUP)


def _is_own_code(path: Path) -> bool:
    """Whether ``path`` is part of Flowhook's own code rather than a handler."""
    return any(path == code or path.is_relative_to(code) for code in OWN_CODE)


def _reloads_on_sighup(process: psutil.Process) -> bool:
    """gunicorn's master or a worker's respawn; not a web process, which SIGHUP would end."""
    module = process.cmdline()[1:3]
    if module == ["-m", "flowhook.dev.respawn"]:
        return True
    parent = process.parent()
    return module == ["-m", "gunicorn"] and (parent is None or parent.cmdline()[1:3] != module)


if __name__ == "__main__":
    sys.exit(main())
