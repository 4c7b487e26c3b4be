"""Turn the figures into tables, judge them against the targets, write docs/benchmarks.md."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.load import driver
from bench.scenarios import (
    AFTER,
    BEFORE,
    REACTION,
    Clicks,
    CurvePoint,
    InFlight,
    Plan,
    RedisCost,
    Retention,
    SlowBackEnd,
    Target,
    WakeUp,
    iqr,
    round_ratios,
)
from flowhook import defaults
from flowhook.settings import Settings

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


@dataclass
class Results:
    """Everything one benchmark run measured."""

    plan: Plan
    settings: Settings
    workers: int
    smoke: bool
    web: list[Target] = field(default_factory=list)
    web_pinned: list[Target] = field(default_factory=list)
    web_plan: Plan | None = None
    worker: dict[str, list[Target]] = field(default_factory=dict)
    wake_up: WakeUp | None = None
    curve: list[CurvePoint] = field(default_factory=list)
    costs: list[RedisCost] = field(default_factory=list)
    retention: Retention | None = None
    slow: SlowBackEnd | None = None
    in_flight: tuple[float, list[InFlight]] | None = None
    metrics: list[Target] = field(default_factory=list)
    clicks: list[Clicks] = field(default_factory=list)
    redis_version: str = "?"


def throughput_table(targets: list[Target]) -> str:
    """Medians of each target, its spread, and each one's ratio to the first (its baseline).

    The ratio is the median of the rounds' ratios (each round runs every target, in turns), with
    their interquartile range; server CPU per call where it was measured; every call not answered
    as expected (socket errors, timeouts, other statuses) in "error answers".
    """
    baseline = targets[0]
    rows = [
        "| target | calls/s (loaded), median [IQR] | ratio, median of rounds [IQR] | server CPU µs/call | "
        "p50 ms (unloaded) | p99 ms (unloaded) | error answers | runs (tries, noisy) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for target in targets:
        ratios = round_ratios(baseline, target)
        ratio = f"{statistics.median(ratios):.3f} x [{iqr(ratios):.3f}]" if ratios else "-"
        cpu = f"{target.cpu:.0f}" if target.cpu is not None else "-"
        latency = f"{target.p50:.2f} | {target.p99:.2f}" if target.unloaded else "- | -"
        rows.append(
            f"| {target.name} | {target.rate:,.0f} [{target.rate_iqr:,.0f}] | {ratio} | {cpu} | {latency} | "
            f"{target.error_answers} of {target.calls:,} | {len(target.loaded)} ({target.tries}, "
            f"{target.noisy_runs}) |"
        )
    return "\n".join(rows)


def web_ratio(targets: list[Target]) -> tuple[float, float]:
    """Scenario 1's figure: Flowhook's calls/s over bare Flask's, median of the rounds, and its IQR."""
    bare, web = targets
    ratios = round_ratios(bare, web)
    return (statistics.median(ratios), iqr(ratios)) if ratios else (0.0, 0.0)


def web_path_text(targets: list[Target]) -> str:
    """One line of scenario 1's figures: the ratio, its spread and each app's server CPU per call."""
    bare, web = targets
    ratio, spread = web_ratio(targets)
    return (
        f"{web.name}: {ratio:.3f} x bare Flask's calls/s (median of {len(web.loaded)} rounds, IQR {spread:.3f}); "
        f"server CPU per call {web.cpu or 0:.0f} µs against {bare.cpu or 0:.0f} µs; error answers "
        f"{web.error_answers} and {bare.error_answers}."
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def capacity(points: list[CurvePoint], mode: str, p99_ms: float = 1100) -> int:
    """The most concurrent conversations answered all done inline, without errors, within ``p99_ms``."""
    fine = [
        point.conversations
        for point in points
        if point.mode == mode
        and point.result.pending == 0
        and point.result.other == 0
        and point.result.errors == 0
        and point.result.p99_ms <= p99_ms
    ]
    return max(fine, default=0)


def _curve_point(points: list[CurvePoint], mode: str, conversations: int) -> CurvePoint | None:
    return next((p for p in points if p.mode == mode and p.conversations == conversations), None)


def slow_back_end_text(slow: SlowBackEnd) -> str:
    """Scenario 6 in a paragraph."""
    return (
        f"{slow.conversations} conversations at once, back end {slow.delay:g} s, calling again 1 s after each "
        f"`pending`: {slow.conversations - slow.not_done} done, {slow.not_done} not; from a conversation's first "
        f"call to its `done`: median {slow.median_done:.2f} s, last {slow.last_done:.2f} s; calls per "
        f"conversation: median {statistics.median(slow.calls):g}, most {max(slow.calls)}. The same number of "
        f"requests straight to the back end, at once: last answered after {slow.last_direct:.2f} s "
        f"(ratio {slow.last_done / slow.last_direct:.2f} x)."
    )


def in_flight_text(in_flight: tuple[float, list[InFlight]]) -> str:
    """Scenario 7 in a paragraph."""
    idle, figures = in_flight
    held = "; ".join(f"{f.started:,} of {f.jobs:,} jobs in flight: {f.rss_mib:.0f} MiB" for f in figures)
    return f"One pool worker process, idle: {idle:.0f} MiB; {held}."


def metrics_cost_text(targets: list[Target]) -> str:
    """Each echo path's throughput and latency with metrics on, as a ratio to the same with them off."""
    by_name = {target.name: target for target in targets}
    lines = []
    for path in ("web", "worker"):
        on, off = by_name[f"echo, {path}, metrics on"], by_name[f"echo, {path}, metrics off"]
        lines.append(
            f"- echo, {path}: metrics on do {on.rate / off.rate:.3f} x the calls/s of metrics off "
            f"({on.rate:,.0f} against {off.rate:,.0f}); p50 latency {on.p50 / off.p50:.3f} x "
            f"({on.p50:.2f} against {off.p50:.2f} ms)."
        )
    return "\n".join(lines)


# Scenario 9's targets: no click for work up to this many seconds, at most 2 clicks for 40 s, and
# every turn under 28 s (LoyJoy's chat front end resends the user's message after about 30 s).
CLICKLESS_UP_TO = 20.0
CLICKS_AT_40 = 2
LONGEST_TURN = 28.0


def clicks_table(figures: list[Clicks]) -> str:
    """Scenario 9: clicks per conversation and the longest turn, each back end, before and after."""
    by = {(f.recipe, f.delay): f for f in figures}
    rows = [
        "| back end | clicks before | clicks after | longest turn before | longest turn after | calls before | "
        "calls after | not done |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for delay in sorted({f.delay for f in figures}):
        before, after = by[BEFORE, delay], by[AFTER, delay]
        rows.append(
            f"| {delay:g} s | {_spread(before.clicks)} | {_spread(after.clicks)} | {max(before.turns_s):.1f} s | "
            f"{max(after.turns_s):.1f} s | {_spread(before.calls)} | {_spread(after.calls)} | "
            f"{before.not_done + after.not_done} |"
        )
    return "\n".join(rows)


def _spread(values: list[int]) -> str:
    """``3`` when every conversation agrees, else ``2-3``."""
    return f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"


def clicks_verdicts(figures: list[Clicks]) -> list[tuple[str, str, bool]]:
    """Scenario 9's targets, for the new recipe: (target, measured, met)."""
    after = [f for f in figures if f.recipe == AFTER]
    short = [f for f in after if f.delay <= CLICKLESS_UP_TO]
    most_short = max((max(f.clicks) for f in short), default=0)
    verdicts = [
        (
            f"0 clicks for work up to {CLICKLESS_UP_TO:g} s",
            f"at most {most_short} ({', '.join(f'{f.delay:g} s' for f in short)})",
            most_short == 0,
        )
    ]
    longest = [f for f in after if f.delay == 40.0]
    if longest:
        most = max(max(f.clicks) for f in longest)
        verdicts.append((f"at most {CLICKS_AT_40} clicks for 40 s of work", f"at most {most}", most <= CLICKS_AT_40))
    turn = max(max(f.turns_s) for f in after)
    verdicts.append((f"every turn under {LONGEST_TURN:g} s", f"longest {turn:.1f} s", turn < LONGEST_TURN))
    not_done = sum(f.not_done for f in figures)
    verdicts.append(("every conversation done", f"{not_done} not done", not_done == 0))
    return verdicts


def clicks_text(figures: list[Clicks]) -> str:
    """Scenario 9 as printed: its table and its targets."""
    lines = [clicks_table(figures), ""]
    lines += [f"- {target}: {measured} ({_verdict(met)})" for target, measured, met in clicks_verdicts(figures)]
    return "\n".join(lines)


def targets_table(results: Results) -> str:
    """Each target of the issue, the figure measured, and whether it is met."""
    rows = ["| target | measured | verdict |", "| --- | --- | --- |"]
    bare, web = results.web
    ratio, spread = web_ratio(results.web)
    rows.append(
        f"| echo, web: throughput >= 0.85 x bare Flask | {ratio:.3f} x (IQR {spread:.3f}) | {_verdict(ratio >= 0.85)} |"
    )
    if results.web_pinned:
        ratio, spread = web_ratio(results.web_pinned)
        rows.append(
            f"| echo, web, server and load generator on separate cores: throughput >= 0.85 x bare Flask | "
            f"{ratio:.3f} x (IQR {spread:.3f}) | {_verdict(ratio >= 0.85)} |"
        )
    extra = web.p50 - bare.p50
    rows.append(f"| echo, web: p50 <= bare + 0.5 ms | bare + {extra:.2f} ms | {_verdict(extra <= 0.5)} |")
    raw, flowhook = results.worker[results.settings.worker_class]
    ratio = flowhook.rate / raw.rate
    rows.append(f"| echo, worker: throughput >= 0.9 x raw RQ | {ratio:.2f} x | {_verdict(ratio >= 0.9)} |")
    extra = flowhook.p50 - bare.p50
    rows.append(f"| echo, worker: p50 <= bare + 3 ms | bare + {extra:.2f} ms | {_verdict(extra <= 3)} |")
    if results.wake_up is not None:
        p50 = results.wake_up.p50
        rows.append(f"| poll wake-up p50 <= 5 ms | {p50:.2f} ms | {_verdict(p50 <= 5)} |")
    web_200 = _curve_point(results.curve, "web", 200)
    worker_200 = _curve_point(results.curve, "worker", 200)
    if web_200 is not None and worker_200 is not None:
        fine = worker_200.result.pending == worker_200.result.errors == worker_200.result.other == 0
        ratio = worker_200.result.rate / web_200.result.rate if web_200.result.rate else 0.0
        p99 = worker_200.result.p99_ms / 1000
        rows.append(
            f"| 200 conversations with 1 s of I/O, worker mode: all done inline, >= 0.8 x web mode's calls/s, "
            f"p99 <= 1.5 s | {'all done' if fine else 'not all done'}, {ratio:.2f} x, p99 {p99:.2f} s | "
            f"{_verdict(fine and ratio >= 0.8 and p99 <= 1.5)} |"
        )
    if results.slow is not None:
        slow = results.slow
        limit = slow.delay + 1
        rows.append(
            f"| {slow.conversations} conversations, back end {slow.delay:g} s, worker mode: last done within "
            f"{limit:g} s of its first call | last {slow.last_done:.2f} s, {slow.not_done} not done | "
            f"{_verdict(slow.not_done == 0 and slow.last_done <= limit)} |"
        )
    most = capacity(results.curve, "web")
    at_most = [p for p in results.curve if p.mode == "web" and p.conversations == most]
    rate = at_most[0].result.rate if at_most else 0.0
    rows.append(
        f"| 200 conversations done inline (web), >= 180 calls/s, p99 <= 1.1 s | {most} conversations, "
        f"{rate:.0f} calls/s | {_verdict(most >= 200 and rate >= 180)} |"
    )
    for target, measured, met in clicks_verdicts(results.clicks) if results.clicks else []:
        rows.append(f"| conversations following the flow recipe: {target} | {measured} | {_verdict(met)} |")
    if results.retention is not None:
        kept = results.retention
        rows.append(
            f"| Redis back to its starting level after {kept.calls:,} calls (every key left expires or is RQ's "
            f"`rq:queues`) | keys {kept.keys_before} -> {kept.keys_peak:,} -> {kept.keys_after} | "
            f"{_verdict(kept.nothing_of_the_calls_left)} |"
        )
    return "\n".join(rows)


def curve_table(points: list[CurvePoint]) -> str:
    rows = [
        "| mode | conversations | calls/s | done | pending | errors | p50 ms | p99 ms | max ms | web RSS MiB | "
        "workers RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for point in points:
        result = point.result
        rows.append(
            f"| {point.mode} | {point.conversations} | {result.rate:.0f} | {result.done} | {result.pending} | "
            f"{result.errors + result.other} | {result.p50_ms:.0f} | {result.p99_ms:.0f} | {result.max_ms:.0f} | "
            f"{point.web_rss_mib:.0f} | {point.worker_rss_mib:.0f} |"
        )
    return "\n".join(rows)


def costs_table(costs: list[RedisCost]) -> str:
    rows = ["| mode | calls | commands per call | bytes per call | commands |", "| --- | ---: | ---: | ---: | --- |"]
    for cost in costs:
        top = ", ".join(f"{name} {count:.2f}" for name, count in sorted(cost.commands.items(), key=lambda i: -i[1]))
        rows.append(
            f"| {cost.mode} | {cost.calls} | {cost.commands_per_call:.1f} | {cost.bytes_per_call:,.0f} | {top} |"
        )
    return "\n".join(rows)


def host() -> str:
    """The machine: processor, cores, memory, system, Python."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    cpu = models[0] if models else platform.processor()
    return (
        f"{cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}"
    )


def machine() -> str:
    """What the figures were measured on: the machine and the load generator."""
    wrk = "not installed (Python driver)"
    if found := shutil.which("wrk"):
        wrk = subprocess.run([found, "--version"], capture_output=True, text=True, check=False).stdout.split("[")[0]
    return f"{host()}; load generator {wrk.strip()}"


def render(results: Results) -> str:
    """The whole results section."""
    settings, plan = results.settings, results.plan
    web_plan = results.web_plan or plan
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "make bench-smoke" if results.smoke else "make bench"
    parts = [
        START,
        f"Measured {when} by `{command}` on {machine()}; Redis {results.redis_version} (private, no persistence).",
        f"Settings as shipped: gunicorn `gevent`, {settings.web_processes} processes x {settings.web_connections} "
        f"connections; {results.workers} RQ workers, class `{settings.worker_class}`; budget {settings.budget:g} s. "
        f"Each figure is the median of {plan.runs} runs, baseline and Flowhook taking turns: throughput with "
        f"{plan.connections} conversations at once for {plan.seconds:g} s (after {plan.warmup:g} s of warm-up), "
        f"latency with one call at a time for {plan.seconds / 2:g} s, so that it shows the path's own cost, not "
        f"queueing. Every call is a new conversation with a 1 KB LoyJoy body. Load generator: `{driver()}`, one "
        "thread. A run during which other processes used more than 0.15 of a core is repeated (up to 3 tries).",
        "",
        "### Targets",
        "",
        targets_table(results),
        "",
        "### 1. echo inline (web mode) against bare Flask",
        "",
        f"{web_plan.runs} rounds, each running both apps in turns (which goes first alternates), "
        f"{web_plan.seconds:g} s of load each after {web_plan.warmup:g} s of warm-up"
        f"{', then latency one call at a time' if web_plan.latency else ''}. Server CPU per call: user + system "
        "time of the gunicorn master and its workers (/proc/<pid>/stat) over each loaded run, divided by the "
        "calls answered.",
        "",
        throughput_table(results.web),
        "",
        web_path_text(results.web),
        "",
        *(
            [
                "Pinned: both servers on one core, the load generator on the other (`taskset`):",
                "",
                throughput_table(results.web_pinned),
                "",
                web_path_text(results.web_pinned),
                "",
            ]
            if results.web_pinned
            else []
        ),
        "### 2. echo through RQ workers against a raw RQ round trip (same workers)",
        "",
        *(throughput_table(targets) + "\n" for targets in results.worker.values()),
    ]
    if results.wake_up is not None:
        samples = results.wake_up.samples_ms
        parts += [
            "### 3. Poll wake-up",
            "",
            f"From the handler returning in the worker to the waiting poll's answer at the client, "
            f"{len(samples)} samples: p50 {results.wake_up.p50:.2f} ms, p90 {results.wake_up.p90:.2f} ms, "
            f"max {max(samples):.2f} ms.",
            "",
        ]
    parts += [
        "### 4. Concurrent conversations whose handler waits 1 s on I/O",
        "",
        f"Each conversation calls again as soon as it is answered, for {plan.curve_seconds:g} s; a loopback "
        "server answers the handler's request after 1 s. Peak RSS of all web processes and all workers.",
        "",
        curve_table(results.curve),
        "",
        f"Capacity, all calls `done` inline with p99 <= 1.1 s: web {capacity(results.curve, 'web')}, "
        f"worker {capacity(results.curve, 'worker')} conversations; with p99 <= 1.5 s: web "
        f"{capacity(results.curve, 'web', 1500)}, worker {capacity(results.curve, 'worker', 1500)}.",
        "",
        "### 5. Redis cost",
        "",
        "Per `done` call, with the idle traffic of the workers (heartbeats, scheduler) subtracted:",
        "",
        costs_table(results.costs),
        "",
    ]
    if results.retention is not None:
        kept = results.retention
        back = f"{kept.seconds_to_baseline:.0f} s after the load" if kept.seconds_to_baseline is not None else "not"
        parts += [
            f"{kept.calls:,} worker calls with `FLOWHOOK_RESULT_TTL={kept.result_ttl}`: keys {kept.keys_before} "
            f"before, {kept.keys_peak:,} at the end of the load, {kept.keys_after} after; used memory "
            f"{kept.memory_before / 2**20:.2f} MiB before, {kept.memory_peak / 2**20:.2f} MiB at the end, "
            f"{kept.memory_after / 2**20:.2f} MiB after. Back to the starting key count: {back}. Keys that "
            f"were not there before (seconds to live, -1 for none): "
            f"{', '.join(f'`{key}` ({ttl})' for key, ttl in kept.keys_left.items()) or 'none'}.",
            "",
        ]
    if results.slow is not None:
        parts += ["### 6. A back end slower than the budget", "", slow_back_end_text(results.slow), ""]
    if results.in_flight is not None:
        parts += [
            "### 7. Memory of jobs in flight",
            "",
            in_flight_text(results.in_flight)
            + " For comparison, measured elsewhere on this kind of machine (not in this run): one Celery worker "
            "(`-P gevent -c 100`) with 100 such tasks in flight, 65 MiB; arq (`max_jobs=100`), 32 MiB.",
            "",
        ]
    if results.metrics:
        parts += [
            "### 8. The cost of metrics",
            "",
            "Each echo path with `FLOWHOOK_METRICS=true` (the default) and `false`, taking turns; each setting "
            "has a web service and workers of its own.",
            "",
            throughput_table(results.metrics),
            "",
            metrics_cost_text(results.metrics),
            "",
        ]
    if results.clicks:
        conversations = len(results.clicks[0].clicks)
        parts += [
            "### 9. Clicks: what the chat user does while slow work runs",
            "",
            f"{conversations} conversations per back end and recipe, all at once, through the workers. Before: "
            "today's recipe, every `pending` a message and a click, polls held at most the budget "
            f"(`FLOWHOOK_POLL_WAIT={defaults.BUDGET:g}`). After: the flow jumps back at once when `<h>_next` is "
            f"`poll`, polls held up to {defaults.POLL_WAIT:g} s. The user clicks {REACTION:g} s after the button "
            "shows; a turn runs from the user's message or click to what the user sees next. Ranges are across the "
            "conversations.",
            "",
            clicks_text(results.clicks),
            "",
        ]
    parts.append(END)
    return "\n".join(parts)


def write(path: Path, section: str, start: str = START, end: str = END) -> None:
    """Replace the results section of ``path`` (between its markers), keeping the prose around it."""
    text = path.read_text() if path.exists() else f"{start}\n{end}\n"
    if start not in text or end not in text:
        text += f"\n{start}\n{end}\n"
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(before + section + after)
