"""One version of the code serving: the web service under gunicorn and the RQ workers, under honcho.

`make run` (``dev.run``) starts this with the Redis it runs; when a handler or ``.env``
changes it reloads gunicorn's master and each worker's respawn (SIGHUP), and when Flowhook's own code
changes it stops this and starts it anew. ``--check`` imports the
code as they will (the app, every handler, the workers' modules) and says what is broken, so
that a broken edit never replaces a serving version.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Message, Printer

from flowhook import logs
from flowhook.dev import envfile
from flowhook.exceptions import FlowhookError
from flowhook.registry import discover
from flowhook.settings import Settings

API_DOCS = "FLOWHOOK_API_DOCS"

ROOT = Path(__file__).resolve().parents[1]  # the project: dev/<this file>
# The workers' code is compiled, not imported: importing it would patch this process for gevent.
WORKER_CODE = ROOT / "workers"


def check() -> int:
    """0 when settings, handlers and Flowhook's code load, naming the handlers; else 2, saying what is wrong."""
    settings = None
    try:
        settings = Settings.from_env()
        handlers = discover(settings)
        importlib.import_module("app")
        for source in sorted(WORKER_CODE.rglob("*.py")):
            compile(source.read_text(), str(source), "exec")
    except FlowhookError as error:
        logs.startup_error(settings, str(error))
        return 2
    except SyntaxError as error:
        logs.startup_error(settings, "".join(traceback.format_exception_only(error)).rstrip())
        return 2
    except Exception:
        # A broken edit of Flowhook's own code: where it broke, not the whole import chain.
        logs.startup_error(settings, "the code does not load:\n" + traceback.format_exc(limit=-3).rstrip())
        return 2
    print(", ".join(handlers))
    return 0


class JsonPrinter(Printer):  # type: ignore[misc]  # honcho is unannotated
    """Every line as one JSON object naming its process, for FLOWHOOK_LOG_FORMAT=json."""

    def write(self, message: Message) -> None:
        data = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
        for line in data.splitlines():
            print(logs.json_line(message.name or "honcho", line), file=self.output, flush=True)


def serve(workers: int) -> int:
    """Run gunicorn and ``workers`` RQ workers until one of them ends or a signal stops them."""
    json_lines = Settings.from_env({**envfile.named_settings(os.environ), **os.environ}).log_format == "json"
    manager = Manager(JsonPrinter(sys.stdout) if json_lines else None)
    manager.add_process("web", f"{sys.executable} -m gunicorn -c gunicorn.conf.py wsgi:app", env=web_environment())
    for number in range(1, workers + 1):
        # Started again if it dies, as docker-compose.yml's `restart: unless-stopped` does.
        manager.add_process(f"worker.{number}", f"{sys.executable} -m flowhook.dev.respawn {sys.executable} -m workers")
    manager.loop()
    return int(manager.returncode or 0)


def web_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The web service's environment: the API's page at /docs on, unless the environment or .env say.

    Off by default everywhere else (the image, compose): a developer's service shows its API.
    """
    environment = dict(os.environ if environ is None else environ)
    chosen = environment.get(API_DOCS) or envfile.named_settings(environment).get(API_DOCS)
    environment[API_DOCS] = chosen or "true"  # empty, as in .env.example: the default of where it runs
    return environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.stack", description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="RQ workers to start (default 2)")
    parser.add_argument("--check", action="store_true", help="only check that the code loads")
    args = parser.parse_args(argv)
    return check() if args.check else serve(args.workers)


if __name__ == "__main__":
    sys.exit(main())
