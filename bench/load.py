"""Drive calls over loopback: wrk when installed, else a small Python driver; same figures either way."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    done: int
    pending: int
    other: int

    @property
    def rate(self) -> float:
        """Answered calls per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def loyjoy_body(variables: dict[str, str]) -> str:
    """A LoyJoy-like body of about 1 KB with INSTANCE_ID where each call's id goes."""
    body = {
        "process_definition_id": "4f6c7a52-5d2b-4e53-9e0a-3b9f1e2d7c10",
        "process_instance_id": "INSTANCE_ID",
        "params": {
            "referrer": "https://shop.example.org/help/orders?utm_source=newsletter&utm_medium=email",
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Safari/537.36",
        },
        "variables": {
            "email": "john.smith@example.org",
            "firstname": "John",
            "lastname": "Smith",
            "gender": "male",
            "nps_score": "10",
            "locale": "en_US",
            "last_message": "Where is my order? I ordered it last week and it has not arrived yet.",
            "order_number": "A-2026-000123",
            "newsletter": "true",
            "visits": "7",
            **variables,
        },
    }
    text = json.dumps(body)
    return text + " " * max(0, 1024 - len(text))


def pinned(cpu: int | None) -> list[str]:
    """The command prefix that runs a command on core ``cpu`` only (none for ``None``)."""
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def separate_cores() -> tuple[int, int] | None:
    """Two cores this process may use, for the server and the load generator; None without two or taskset."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2 or shutil.which("taskset") is None:
        return None
    return allowed[0], allowed[1]


def driver() -> str:
    """The load generator in use: wrk from Debian's packages, else the Python driver."""
    return "wrk" if shutil.which("wrk") else "python"


def run_load(
    url: str, body: str, connections: int, seconds: float, *, timeout: float = 30.0, cpu: int | None = None
) -> LoadResult:
    """Keep ``connections`` conversations calling ``url`` for ``seconds``, each call a new instance.

    ``cpu``: run the load generator on that core only (wrk under ``taskset``; the Python driver
    pins this process for the run), so that it does not share a core with the server.
    """
    if driver() == "wrk":
        return _run_wrk(url, body, connections, seconds, timeout=timeout, cpu=cpu)
    if cpu is None:
        return _run_python(url, body, connections, seconds, timeout)
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        return _run_python(url, body, connections, seconds, timeout)
    finally:
        os.sched_setaffinity(0, allowed)


def _run_wrk(url: str, body: str, connections: int, seconds: float, *, timeout: float, cpu: int | None) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        file.write(body)
    body_file = Path(file.name)
    try:
        command = [
            *pinned(cpu), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout:g}s",
            "-s", str(HERE / "calls.lua"), url, "--", str(body_file),
        ]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        body_file.unlink()
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    return LoadResult(**json.loads(line.removeprefix("WRK_JSON ")))


def _run_python(url: str, body: str, connections: int, seconds: float, timeout: float) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    latencies: list[float] = []
    counts = {"done": 0, "pending": 0, "other": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def conversation(number: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        sent = 0
        while time.monotonic() < deadline:
            sent += 1
            payload = body.replace("INSTANCE_ID", f"py{number}-{uuid.uuid4().hex[:8]}-{sent}", 1)
            started = time.monotonic()
            try:
                connection.request("POST", parts.path, payload, {"Content-Type": "application/json"})
                response = connection.getresponse()
                text = response.read().decode()
            except (OSError, http.client.HTTPException):
                with lock:
                    counts["errors"] += 1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=timeout)
                continue
            elapsed = (time.monotonic() - started) * 1000
            kind = "other"
            if response.status == 200 and '_status": "done"' in text.replace('":"', '": "'):
                kind = "done"
            elif response.status == 200 and '_status": "pending"' in text.replace('":"', '": "'):
                kind = "pending"
            with lock:
                latencies.append(elapsed)
                counts[kind] += 1
        connection.close()

    started = time.monotonic()
    workers = [threading.Thread(target=conversation, args=(n,)) for n in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    took = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0.0] * 99
    return LoadResult(
        requests=len(latencies),
        seconds=took,
        errors=counts["errors"],
        p50_ms=cuts[49],
        p90_ms=cuts[89],
        p99_ms=cuts[98],
        max_ms=max(latencies, default=0.0),
        done=counts["done"],
        pending=counts["pending"],
        other=counts["other"],
    )
