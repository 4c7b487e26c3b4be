"""`make run`: Redis, the web service under gunicorn and RQ workers, in the foreground.

Ctrl-C stops them all. Without ``REDIS_URL`` a private redis-server keeps its data in
``.flowhook/redis``; with it, that Redis is used and nothing is started for it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from honcho.manager import Manager

from flowhook.exceptions import FlowhookError
from flowhook.redis_server import EmbeddedRedis
from flowhook.registry import discover
from flowhook.settings import Settings

DATA_DIRECTORY = Path(".flowhook/redis")
# honcho's exit codes when it stopped everything because it received SIGINT or SIGTERM.
STOPPED_BY_SIGNAL = (130, 143)


def main(argv: list[str] | None = None) -> int:
    """Run everything until Ctrl-C; returns the exit status of the first part to stop."""
    parser = argparse.ArgumentParser(prog="python -m flowhook.local", description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="RQ workers to start (default 2)")
    parser.add_argument(
        "--data-dir", type=Path, default=DATA_DIRECTORY, help=f"private Redis's files (default {DATA_DIRECTORY})"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        handlers = discover(settings)
    except FlowhookError as error:
        print(f"flowhook: {error}", file=sys.stderr)
        return 2

    environment = dict(os.environ)
    redis = None
    if not environment.get("REDIS_URL"):
        redis = EmbeddedRedis(args.data_dir)
        environment["REDIS_URL"] = redis.start()
        print(f"flowhook: private redis-server at {redis.url}, data in {args.data_dir}/", flush=True)
    print(
        f"flowhook: serving {', '.join(handlers)} at http://127.0.0.1:{settings.port}/webservice/<handler>",
        flush=True,
    )

    manager = Manager()
    manager.add_process("web", f"{sys.executable} -m gunicorn -c gunicorn.conf.py wsgi:app", env=environment)
    for number in range(1, args.workers + 1):
        # Started again if it dies, as docker-compose.yml's `restart: unless-stopped` does.
        manager.add_process(
            f"worker.{number}", f"{sys.executable} -m flowhook.respawn {sys.executable} -m workers", env=environment
        )
    try:
        manager.loop()
    finally:
        if redis is not None:
            redis.stop()
    # Ctrl-C or SIGTERM is how `make run` is meant to end: that is a clean stop, not a failure.
    return 0 if manager.returncode in STOPPED_BY_SIGNAL else int(manager.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
