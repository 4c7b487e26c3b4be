"""`make monitor-check`: a real Prometheus scrapes a running Flowhook and loads its alert rules.

It checks the shipped rules with ``promtool check rules``, finds the running service (``--url``, or
the `make run` of this folder), makes one ``echo`` call so that there is a call to count, then runs
Debian's ``prometheus`` on loopback with a scrape configuration for that service and the shipped
rules, and prints what Prometheus reports: the target's health, a few series it scraped, whether
the Grafana dashboard's queries evaluate, and the rules' states. Prometheus and its data are
removed at the end; the exit status is 1 if a step failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from flowhook.dev import runfile
from flowhook.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "flowhook.json"
# 9090 is Prometheus's own default; another port keeps clear of a Prometheus already there.
DEFAULT_PORT = 9102
# Seconds for Prometheus to start, scrape the service and evaluate the rules once.
READY_WITHIN = 30.0
SHOWN_SERIES = ("flowhook_redis_up", "flowhook_calls_total", "flowhook_workers", "flowhook_jobs_total")


def step(name: str, ok: bool, detail: str = "") -> bool:
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def service_url(given: str | None) -> str | None:
    """The service to scrape: ``--url``, or the `make run` of this folder."""
    if given:
        return given.rstrip("/")
    running = runfile.running(Path(Settings.from_env().state_file))
    if running is None:
        return None
    host = "127.0.0.1" if running.host in ("0.0.0.0", "::") else running.host
    return f"http://{host}:{running.port}"


def scrape_config(target: str, token: str | None) -> str:
    """Prometheus's configuration: the service every second, and the shipped rules."""
    authorization = f"    authorization:\n      credentials: {token}\n" if token else ""
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n  - job_name: flowhook\n    metrics_path: /metrics\n"
        f"{authorization}"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )


def api(port: int, path: str, **params: str) -> Any:
    response = requests.get(f"http://127.0.0.1:{port}/api/v1/{path}", params=params, timeout=5)
    response.raise_for_status()
    return response.json()["data"]


def wait_for_scrape(port: int) -> dict[str, Any] | None:
    """The service's target once Prometheus has scraped it successfully, or None."""
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        try:
            targets = api(port, "targets")["activeTargets"]
        except requests.RequestException:
            targets = []
        if targets and targets[0]["health"] == "up":
            return dict(targets[0])
        time.sleep(0.5)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.monitor_check", description=__doc__)
    parser.add_argument("--url", help="the running service (default: this folder's make run)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Prometheus's port (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    tools = {name: shutil.which(name) for name in ("promtool", "prometheus")}
    if not all(tools.values()):
        print("monitor-check needs Debian's prometheus package: sudo apt-get install prometheus", file=sys.stderr)
        return 1
    promtool = str(tools["promtool"])
    rules = str(RULES.relative_to(ROOT))
    checked = subprocess.run([promtool, "check", "rules", rules], cwd=ROOT, check=False, capture_output=True, text=True)
    if not step("promtool check rules", checked.returncode == 0, (checked.stdout + checked.stderr).strip()):
        return 1
    url = service_url(args.url)
    if url is None:
        print("monitor-check: no make run in this folder; start it, or give --url", file=sys.stderr)
        return 1
    token = os.environ.get("FLOWHOOK_METRICS_TOKENS", "").split(",")[0].strip() or None
    body = {"process_instance_id": f"monitor-check-{uuid.uuid4().hex[:8]}", "variables": {}}
    try:
        answer = requests.post(f"{url}/webservice/echo", json=body, timeout=20).json()["data"]["variables"]
        step("one echo call", True, f"{url}: echo_status={answer.get('echo_status')}")
    except (requests.RequestException, KeyError, ValueError) as error:
        step("one echo call", False, f"{url}: {error}")
    with tempfile.TemporaryDirectory(prefix="flowhook-prometheus-") as scratch:
        config = Path(scratch) / "prometheus.yml"
        config.write_text(scrape_config(url.split("://", 1)[1], token))
        checked = subprocess.run(
            [promtool, "check", "config", str(config)], check=False, capture_output=True, text=True
        )
        if not step("promtool check config", checked.returncode == 0, checked.stderr.strip()):
            return 1
        log = Path(scratch) / "prometheus.log"
        with log.open("wb") as output:
            prometheus = subprocess.Popen(
                [
                    str(tools["prometheus"]),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={scratch}/data",
                    f"--web.listen-address=127.0.0.1:{args.port}",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            return report(args.port, url, log)
        finally:
            prometheus.terminate()
            prometheus.wait(15)


def report(port: int, url: str, log: Path) -> int:
    """What Prometheus saw; 0 when it scraped the service and loaded every rule."""
    target = wait_for_scrape(port)
    if not step(f"Prometheus on 127.0.0.1:{port} scraped {url}/metrics", target is not None):
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        return 1
    assert target is not None
    step("target", True, f"health={target['health']} last scrape {target['lastScrapeDuration'] * 1000:.1f} ms")
    time.sleep(2)  # a second scrape, so that rates have two points
    for name in SHOWN_SERIES:
        series = api(port, "query", query=name)["result"]
        shown = ", ".join(
            "{"
            + ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k not in ("__name__", "job", "instance"))
            + "} "
            + s["value"][1]
            for s in series[:6]
        )
        step(f"series {name}", bool(series), shown or "none")
    queries = [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]]
    failed = []
    for query in queries:
        try:
            api(port, "query", query=query)
        except requests.HTTPError as error:
            failed.append(f"{query}: {error}")
    step(f"the dashboard's {len(queries)} queries evaluate", not failed, "; ".join(failed))
    groups = api(port, "rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    states = ", ".join(f"{rule['name']}={rule.get('state', rule['health'])}" for rule in rules)
    loaded = step("alert rules loaded", len(rules) > 0 and all(rule["health"] == "ok" for rule in rules), states)
    return 0 if loaded and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
