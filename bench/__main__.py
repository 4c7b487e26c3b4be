"""`make bench` (`python -m bench`) and `make bench-smoke` (`python -m bench --smoke`).

Starts its own Redis, gunicorn apps and RQ workers, drives load over loopback, prints the figures
and writes them into docs/benchmarks.md between its result markers.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

from bench import report, scenarios
from bench.load import driver
from bench.stack import ROOT, Stack
from flowhook.settings import Settings

OUTPUT = ROOT / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and report; returns 0 when the harness ran, whatever the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="seconds-long run that only checks the harness")
    parser.add_argument(
        "--only",
        choices=["metrics"],
        help="run one scenario, print its figures and write nothing (metrics: scenario 8)",
    )
    parser.add_argument(
        "--output", type=Path, help=f"report file (default {OUTPUT.relative_to(ROOT)}; none for --smoke)"
    )
    args = parser.parse_args(argv)
    # Stopped with SIGTERM, still stop everything the benchmark started (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = scenarios.SMOKE if args.smoke else scenarios.FULL
    settings = Settings.from_env({})
    workers = 2  # as `make run` and docker-compose.yml start them
    print(f"flowhook bench: {'smoke' if args.smoke else 'full'} run, load generator {driver()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="flowhook-bench-") as directory:
        stack = Stack(Path(directory), FLOWHOOK_LOG_LEVEL="WARNING" if args.smoke else "INFO")
        stack.start_redis()
        if args.only == "metrics":
            try:
                targets = scenarios.metrics_cost(stack, plan, workers)
            finally:
                stack.stop_all()
            print(report.throughput_table(targets), report.metrics_cost_text(targets), sep="\n\n")
            return 0
        try:
            results = report.Results(plan=plan, settings=settings, workers=workers, smoke=args.smoke)
            results.web = scenarios.web_path(stack, plan)
            print(report.throughput_table(results.web), flush=True)
            # The full run measures the other worker classes too, for the trade-offs in the docs.
            others = () if args.smoke else tuple(sorted({"pool", "simple", "fork"} - {settings.worker_class}))
            for worker_class in (settings.worker_class, *others):
                results.worker[worker_class] = scenarios.worker_path(stack, plan, worker_class, workers)
                print(report.throughput_table(results.worker[worker_class]), flush=True)
            stack.stop("web")
            results.wake_up = scenarios.poll_wake_up(stack, plan)
            results.curve = scenarios.concurrency_curve(stack, plan, workers)
            results.slow = scenarios.slow_back_end(stack, plan, workers)
            print(report.slow_back_end_text(results.slow), flush=True)
            results.in_flight = scenarios.jobs_in_flight(stack, plan)
            print(report.in_flight_text(results.in_flight), flush=True)
            results.costs = scenarios.redis_cost(stack, plan, workers)
            results.retention = scenarios.retention(stack, plan, workers)
            # The smoke run only checks the scenario's code: one worker per setting starts sooner.
            results.metrics = scenarios.metrics_cost(stack, plan, 1 if args.smoke else workers)
            print(report.metrics_cost_text(results.metrics), flush=True)
            results.redis_version = str(stack.redis.info("server")["redis_version"])
        finally:
            stack.stop_all()

    text = report.render(results)
    print(text)
    output = args.output or (None if args.smoke else OUTPUT)
    if output is not None:
        report.write(output, text)
        print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
