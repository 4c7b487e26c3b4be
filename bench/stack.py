"""The processes a benchmark runs against: a private Redis, gunicorn apps, RQ workers, the slow API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
from redis import Redis
from rq import Worker

from flowhook.dev.redis_server import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Stack:
    """Starts and stops everything a scenario needs; every process it starts, it ends."""

    def __init__(self, directory: Path, **settings: str) -> None:
        self.directory = directory
        self.redis_server = EmbeddedRedis(directory / "redis", appendonly=False)
        self.settings = settings
        self.processes: dict[str, list[subprocess.Popen[bytes]]] = {}
        # Where a group of processes runs (a command prefix: `ip netns exec <namespace>`) and the
        # address its port is reached at; this machine's loopback unless `make failover --partition`
        # puts the group on a network of its own.
        self.launchers: dict[str, list[str]] = {}
        self.addresses: dict[str, str] = {}

    def start_redis(self) -> None:
        self.redis_server.start()
        self.redis = Redis.from_url(self.redis_server.url)

    @property
    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.redis_server.url,
            "FLOWHOOK_HANDLERS": "bench.handlers",
            "PYTHONPATH": str(ROOT),
            **self.settings,
        }

    def _spawn(self, group: str, command: list[str], **settings: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{group}.log").open("ab")
        process = subprocess.Popen(
            [*self.launchers.get(group, []), *command],
            cwd=ROOT,
            env={**self.environment, **settings},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.processes.setdefault(group, []).append(process)
        return process

    def start_web(self, name: str, app: str, **settings: str) -> str:
        """Run ``app`` under gunicorn with Flowhook's gunicorn.conf.py; returns its base URL."""
        port, host = free_port(), self.addresses.get(name, "127.0.0.1")
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app]
        self._spawn(name, command, PORT=str(port), FLOWHOOK_HOST=host, **settings)
        self._wait_for_port(port, name)
        return f"http://{host}:{port}"

    def start_workers(self, count: int, **settings: str) -> None:
        """Start ``count`` Flowhook workers (python -m workers) and wait until they listen."""
        for _ in range(count):
            self._spawn("workers", [sys.executable, "-m", "workers"], **settings)
        deadline = time.monotonic() + 30
        while len(Worker.all(connection=self.redis)) < len(self.processes["workers"]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start; see {self.directory / 'workers.log'}")
            time.sleep(0.05)

    def start_slow_api(self, delay: float) -> str:
        """Run the loopback server that answers after ``delay`` seconds; returns its URL."""
        port = free_port()
        self._spawn("slow_api", [sys.executable, "-m", "bench.sleepy", "--port", str(port), "--delay", str(delay)])
        self._wait_for_port(port, "slow_api")
        return f"http://127.0.0.1:{port}/"

    def _wait_for_port(self, port: int, group: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((self.addresses.get(group, "127.0.0.1"), port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{group} did not start; see {self.directory / group}.log") from None
                time.sleep(0.05)

    def stop(self, group: str) -> None:
        """Stop a group of processes gracefully (SIGTERM), then for sure."""
        processes = self.processes.pop(group, [])
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_all(self) -> None:
        for group in list(self.processes):
            self.stop(group)
        self.redis_server.stop()

    def group_pids(self, group: str) -> list[int]:
        """The processes of one group and their children (a gunicorn master and its workers)."""
        found = []
        for process in self.processes.get(group, []):
            try:
                parent = psutil.Process(process.pid)
                found += [parent.pid, *(child.pid for child in parent.children(recursive=True))]
            except psutil.NoSuchProcess:
                continue
        return found

    def cpu_seconds(self, group: str) -> float:
        """CPU time (user + system) used so far by a group's processes, from /proc/<pid>/stat."""
        total = 0
        for pid in self.group_pids(group):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of the line
        return total / CLOCK_TICKS

    def pids(self) -> list[int]:
        """Every process of the stack, children included."""
        found = []
        for processes in self.processes.values():
            for process in processes:
                try:
                    parent = psutil.Process(process.pid)
                    found += [parent.pid, *(child.pid for child in parent.children(recursive=True))]
                except psutil.NoSuchProcess:
                    continue
        if self.redis_server.process is not None:
            found.append(self.redis_server.process.pid)
        return found

    @staticmethod
    def process_rss_mib(pid: int) -> float:
        """Resident memory of one process (not its children), in MiB."""
        return float(psutil.Process(pid).memory_info().rss) / 2**20

    def rss_mib(self, group: str) -> float:
        """Resident memory of a group's processes and their children, in MiB."""
        total = 0
        for process in self.processes.get(group, []):
            try:
                parent = psutil.Process(process.pid)
                total += sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
            except psutil.NoSuchProcess:
                continue
        return total / 2**20
