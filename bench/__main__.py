"""`make bench` (`python -m bench`) and `make bench-smoke` (`python -m bench --smoke`).

Starts its own Redis, gunicorn apps and RQ workers, drives load over loopback, prints the figures
and writes them into docs/benchmarks.md between its result markers.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench import report, scenarios
from bench.load import driver
from bench.stack import ROOT, Stack
from flowhook.settings import Settings

OUTPUT = ROOT / "docs" / "benchmarks.md"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="seconds-long run that only checks the harness")
    parser.add_argument(
        "--only",
        choices=["1", "workers", "metrics", "clicks"],
        help="run some scenarios, print their figures and write nothing (1: the inline path against bare Flask, "
        "unpinned and pinned, throughput only, about a minute each; workers: the pool worker's scenarios 2, 5a, "
        "the slow back end and the jobs in flight; metrics: scenario 8; clicks: scenario 9, about a minute)",
    )
    parser.add_argument("--rounds", type=int, help="rounds (runs) per measurement, overriding the plan's")
    parser.add_argument("--seconds", type=float, help="seconds of load per run, overriding the plan's")
    parser.add_argument(
        "--tries", type=int, help="tries of a run while other processes keep the machine busy (default 3)"
    )
    parser.add_argument(
        "--output", type=Path, help=f"report file (default {OUTPUT.relative_to(ROOT)}; none for --smoke)"
    )
    return parser.parse_args(argv)


def _plans(args: argparse.Namespace) -> tuple[scenarios.Plan, scenarios.Plan]:
    """The plan of every scenario, and scenario 1's (more, shorter rounds), with the command line's overrides."""
    plan = scenarios.SMOKE if args.smoke else scenarios.FULL
    web_plan = scenarios.SMOKE if args.smoke else scenarios.QUICK_WEB if args.only == "1" else scenarios.FULL_WEB
    if args.rounds:
        plan, web_plan = replace(plan, runs=args.rounds), replace(web_plan, runs=args.rounds)
    if args.seconds:
        plan, web_plan = replace(plan, seconds=args.seconds), replace(web_plan, seconds=args.seconds)
    if args.tries:
        plan, web_plan = replace(plan, tries=args.tries), replace(web_plan, tries=args.tries)
    return plan, web_plan


def _web_paths(stack: Stack, web_plan: scenarios.Plan, results: report.Results | None = None) -> None:
    """Scenario 1, unpinned then pinned; prints its figures, and keeps them in ``results`` if given."""
    web = scenarios.web_path(stack, web_plan)
    print(report.throughput_table(web), report.web_path_text(web), sep="\n\n", flush=True)
    stack.stop("web")
    pinned = scenarios.web_path(stack, web_plan, on_separate_cores=True)
    if pinned:
        print(report.throughput_table(pinned), report.web_path_text(pinned), sep="\n\n", flush=True)
    if results is not None:
        results.web_plan, results.web, results.web_pinned = web_plan, web, pinned


def _worker_paths(stack: Stack, plan: scenarios.Plan, workers: int) -> None:
    """The pool worker's figures alone: throughput and Redis commands against raw RQ, slow back ends."""
    print(report.throughput_table(scenarios.worker_path(stack, plan, "pool", workers)), flush=True)
    for cost in scenarios.redis_cost(stack, plan, workers):
        print(f"{cost.mode}: {cost.commands_per_call:.1f} Redis commands per done call", flush=True)
    print(report.slow_back_end_text(scenarios.slow_back_end(stack, plan, workers)), flush=True)
    print(report.in_flight_text(scenarios.jobs_in_flight(stack, plan)), flush=True)


def _only(which: str, stack: Stack, plan: scenarios.Plan, web_plan: scenarios.Plan, workers: int) -> None:
    """``--only``: some scenarios, their figures printed, nothing written."""
    if which == "1":
        _web_paths(stack, web_plan)
    elif which == "workers":
        _worker_paths(stack, plan, workers)
    elif which == "clicks":
        print(report.clicks_text(scenarios.clicks(stack, plan, workers)))
    else:
        targets = scenarios.metrics_cost(stack, plan, workers)
        print(report.throughput_table(targets), report.metrics_cost_text(targets), sep="\n\n")


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and report; returns 0 when the harness ran, whatever the figures."""
    args = _arguments(argv)
    # Stopped with SIGTERM, still stop everything the benchmark started (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan, web_plan = _plans(args)
    settings = Settings.from_env({})
    workers = 2  # as `make run` and docker-compose.yml start them
    print(f"flowhook bench: {'smoke' if args.smoke else 'full'} run, load generator {driver()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="flowhook-bench-") as directory:
        stack = Stack(Path(directory), FLOWHOOK_LOG_LEVEL="WARNING" if args.smoke else "INFO")
        stack.start_redis()
        if args.only is not None:
            try:
                _only(args.only, stack, plan, web_plan, workers)
            finally:
                stack.stop_all()
            return 0
        try:
            results = report.Results(plan=plan, settings=settings, workers=workers, smoke=args.smoke)
            _web_paths(stack, web_plan, results)
            # The full run measures the other worker classes too, for the trade-offs in the docs.
            others = () if args.smoke else tuple(sorted({"pool", "simple", "fork"} - {settings.worker_class}))
            for worker_class in (settings.worker_class, *others):
                results.worker[worker_class] = scenarios.worker_path(stack, plan, worker_class, workers)
                print(report.throughput_table(results.worker[worker_class]), flush=True)
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
            results.clicks = scenarios.clicks(stack, plan, workers)
            print(report.clicks_text(results.clicks), flush=True)
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
