"""The measurements, each against its baseline in the same run. Figures only: the report judges them."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

import requests
from rq import Queue
from rq.registry import StartedJobRegistry

from bench.guard import Guarded, guarded
from bench.load import LoadResult, loyjoy_body, pinned, run_load, separate_cores
from bench.stack import Stack
from flowhook import defaults
from flowhook.connection import handler_queue
from flowhook.contract import Envelope
from flowhook.jobstore import JobStore
from flowhook.registry import discover
from flowhook.settings import Settings


@dataclass(frozen=True)
class Plan:
    """How long and how often to measure: the full benchmark, or the seconds-long smoke run."""

    runs: int
    seconds: float
    warmup: float
    connections: int
    curve: tuple[int, ...]
    curve_seconds: float
    wakeup_samples: int
    cost_seconds: float
    memory_calls: int
    retention_wait: float
    slow_conversations: int
    slow_delay: float
    in_flight: tuple[int, ...]
    # Whether each round also measures latency, one call at a time (throughput only when off).
    latency: bool = True
    # How often a run is tried while other processes keep the machine busy (bench/guard.py).
    tries: int = 3
    # Scenario 9: the back ends' seconds, and conversations per back end and recipe.
    click_delays: tuple[float, ...] = (3.0, 8.0, 15.0, 25.0, 40.0)
    click_conversations: int = 3


FULL = Plan(5, 6.0, 2.0, 16, (16, 64, 200, 500), 15.0, 50, 5.0, 100_000, 240.0, 100, 8.0, (100, 1000))
SMOKE = Plan(1, 1.0, 0.0, 4, (4,), 1.0, 2, 1.0, 200, 2.0, 3, 1.0, (3,), click_delays=(1.0,), click_conversations=1)
# Scenario 1 (the inline path against bare Flask, unpinned and pinned): more, shorter rounds, whose
# median and spread say more about a ratio near its target than a few long runs.
FULL_WEB = replace(FULL, runs=12, seconds=3.0, warmup=1.0)
# `python -m bench --only 1`: scenario 1 alone, throughput only, about a minute per variant.
QUICK_WEB = replace(FULL, runs=10, seconds=2.0, warmup=0.5, latency=False)


@dataclass
class Target:
    """One thing measured several times: throughput under load, latency unloaded; medians of runs."""

    name: str
    loaded: list[Guarded[LoadResult]] = field(default_factory=list)
    unloaded: list[Guarded[LoadResult]] = field(default_factory=list)
    # Server CPU (the gunicorn master and its workers) per answered call in each loaded run, in µs.
    cpu_us: list[float] = field(default_factory=list)

    @staticmethod
    def _median(samples: list[Guarded[LoadResult]], figure: Callable[[LoadResult], float]) -> float:
        return statistics.median(figure(sample.value) for sample in samples) if samples else 0.0

    @property
    def rate(self) -> float:
        """Calls per second with ``plan.connections`` conversations at once."""
        return self._median(self.loaded, lambda result: result.rate)

    @property
    def rate_iqr(self) -> float:
        """The spread of the loaded runs' calls per second: the interquartile range."""
        return iqr([sample.value.rate for sample in self.loaded])

    @property
    def p50(self) -> float:
        """Milliseconds per call, one call at a time: the path's own latency, no queueing."""
        return self._median(self.unloaded, lambda result: result.p50_ms)

    @property
    def p99(self) -> float:
        return self._median(self.unloaded, lambda result: result.p99_ms)

    @property
    def cpu(self) -> float | None:
        """Median server CPU per call in µs, when measured."""
        return statistics.median(self.cpu_us) if self.cpu_us else None

    @property
    def error_answers(self) -> int:
        """Calls not answered as expected over every run: socket errors, timeouts, other statuses."""
        return sum(s.value.errors + s.value.other for s in self.loaded + self.unloaded)

    @property
    def calls(self) -> int:
        return sum(s.value.requests for s in self.loaded + self.unloaded)

    @property
    def noisy_runs(self) -> int:
        return sum(sample.noisy for sample in self.loaded + self.unloaded)

    @property
    def tries(self) -> int:
        return sum(sample.tries for sample in self.loaded + self.unloaded)


def iqr(values: list[float]) -> float:
    """Interquartile range (0 for fewer than two values)."""
    if len(values) < 2:
        return 0.0
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return quartiles[2] - quartiles[0]


def round_ratios(baseline: Target, target: Target) -> list[float]:
    """``target``'s calls/s over the baseline's, round by round (each round runs both, in turns)."""
    return [
        mine.value.rate / theirs.value.rate
        for theirs, mine in zip(baseline.loaded, target.loaded, strict=False)
        if theirs.value.rate
    ]


def alternate(
    stack: Stack,
    plan: Plan,
    urls: dict[str, str],
    body: str,
    *,
    groups: dict[str, str] | None = None,
    load_cpu: int | None = None,
) -> list[Target]:
    """Measure each URL ``plan.runs`` times in rounds, taking turns so that drift hits all alike.

    Which target goes first alternates from round to round, so that none always runs right after a
    warm-up of the other. ``groups`` names the stack group serving each target: its server CPU per
    answered call is measured (from /proc) around each loaded run. ``load_cpu`` pins the load
    generator to that core. With ``plan.latency`` off, only throughput is measured.
    """
    targets = [Target(name) for name in urls]
    groups = groups or {}
    for number in range(plan.runs):
        for target in targets if number % 2 == 0 else targets[::-1]:
            url = urls[target.name]
            group = groups.get(target.name)
            if plan.warmup:
                run_load(url, body, plan.connections, plan.warmup, cpu=load_cpu)
            spent: list[float] = []

            def measured(url: str = url, group: str | None = group, spent: list[float] = spent) -> LoadResult:
                before = stack.cpu_seconds(group) if group else 0.0
                result = run_load(url, body, plan.connections, plan.seconds, cpu=load_cpu)
                if group and result.requests:
                    spent[:] = [(stack.cpu_seconds(group) - before) / result.requests * 1e6]
                return result

            loaded = guarded(measured, stack.pids, plan.tries)
            target.cpu_us += spent  # of the try kept, when the guard repeated a noisy one
            target.loaded.append(loaded)
            if plan.latency:
                target.unloaded.append(
                    guarded(partial(run_load, url, body, 1, plan.seconds / 2, cpu=load_cpu), stack.pids, plan.tries)
                )
    return targets


def web_path(stack: Stack, plan: Plan, *, on_separate_cores: bool = False) -> list[Target]:
    """Scenario 1: echo inline (web mode) against a bare Flask view.

    ``on_separate_cores``: both servers on one core and the load generator on another
    (``taskset``), so that they do not compete for a core; no targets at all when this process may
    use fewer than two cores or taskset is missing.
    """
    cores = separate_cores() if on_separate_cores else None
    if on_separate_cores and cores is None:
        return []
    server_cpu, load_cpu = cores if cores else (None, None)
    names = {"bare": "bare Flask", "web": "Flowhook echo, web"}
    if cores:
        names = {group: f"{name}, pinned" for group, name in names.items()}
        for group in names:
            stack.launchers[f"{group}_pinned"] = pinned(server_cpu)
    suffix = "_pinned" if cores else ""
    bare = stack.start_web(f"bare{suffix}", "bench.apps:create_bare()")
    flowhook = stack.start_web(f"web{suffix}", "wsgi:app")
    urls = {names["bare"]: f"{bare}/webservice/echo_web", names["web"]: f"{flowhook}/webservice/echo_web"}
    groups = {names["bare"]: f"bare{suffix}", names["web"]: f"web{suffix}"}
    try:
        return alternate(stack, plan, urls, loyjoy_body({}), groups=groups, load_cpu=load_cpu)
    finally:
        stack.stop(f"bare{suffix}")
        if cores:
            stack.stop(f"web{suffix}")


def worker_path(stack: Stack, plan: Plan, worker_class: str, workers: int) -> list[Target]:
    """Scenario 2: echo through RQ workers against a raw RQ round trip, same workers."""
    stack.start_workers(workers, FLOWHOOK_WORKER_CLASS=worker_class)
    raw = stack.start_web("raw_rq", "bench.apps:create_raw_rq()")
    flowhook = stack.start_web("web_worker", "wsgi:app")
    urls = {
        f"raw RQ round trip ({worker_class})": f"{raw}/webservice/echo_worker",
        f"Flowhook echo, worker ({worker_class})": f"{flowhook}/webservice/echo_worker",
    }
    try:
        return alternate(stack, plan, urls, loyjoy_body({}))
    finally:
        for group in ("raw_rq", "web_worker", "workers"):
            stack.stop(group)


def metrics_cost(stack: Stack, plan: Plan, workers: int) -> list[Target]:
    """Scenario 8: both echo paths with metrics on and off (FLOWHOOK_METRICS), taking turns in one run.

    Each setting has a web service and workers of its own, on queues of its own: the workers' job
    figures are switched with the web's call counts.
    """
    urls = {}
    for state, enabled in (("on", "true"), ("off", "false")):
        settings = {"FLOWHOOK_METRICS": enabled, "FLOWHOOK_QUEUE": f"metrics_{state}"}
        stack.start_workers(workers, **settings)
        base = stack.start_web(f"web_metrics_{state}", "wsgi:app", **settings)
        urls[f"echo, web, metrics {state}"] = f"{base}/webservice/echo_web"
        urls[f"echo, worker, metrics {state}"] = f"{base}/webservice/echo_worker"
    try:
        return alternate(stack, plan, urls, loyjoy_body({}))
    finally:
        for group in ("web_metrics_on", "web_metrics_off", "workers"):
            stack.stop(group)


@dataclass(frozen=True)
class WakeUp:
    """Scenario 3: from a job's end to the answer of the poll waiting for it, in milliseconds."""

    samples_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.samples_ms, n=10)[8] if len(self.samples_ms) > 1 else self.samples_ms[0]


def _poll_timed(url: str, body: dict[str, Any]) -> tuple[float, float]:
    """Poll once; returns when the answer arrived and when the job finished (wall-clock seconds)."""
    response = requests.post(url, json=body, timeout=10)
    return time.time(), float(response.json()["data"]["variables"]["finished_at"])


def poll_wake_up(stack: Stack, plan: Plan) -> WakeUp:
    """Start a job that waits for a gate, poll it, open the gate; time the job's end to the answer."""
    stack.start_workers(1)
    url = stack.start_web("web_wakeup", "wsgi:app") + "/webservice/stamp"
    samples = []
    try:
        with ThreadPoolExecutor(max_workers=1) as poller:
            for _ in range(plan.wakeup_samples):
                gate = uuid.uuid4().hex
                body = {"process_instance_id": f"wake-{gate}", "variables": {"gate": gate}}
                first = requests.post(url, json=body, timeout=10).json()["data"]["variables"]
                assert first["stamp_status"] == "pending", first
                poll = poller.submit(_poll_timed, url, {**body, "variables": {"gate": gate, **first}})
                time.sleep(0.1)  # the poll is waiting on the job's result by now
                stack.redis.rpush(f"bench:gate:{gate}", "open")
                answered_at, finished_at = poll.result()
                samples.append((answered_at - finished_at) * 1000)
    finally:
        stack.stop("web_wakeup")
        stack.stop("workers")
    return WakeUp(samples)


@dataclass(frozen=True)
class CurvePoint:
    """Scenario 4: one concurrency level of conversations whose handler waits 1 s on I/O."""

    mode: str
    conversations: int
    result: LoadResult
    web_rss_mib: float
    worker_rss_mib: float
    other_cores: float


@contextmanager
def peak_rss(stack: Stack, groups: tuple[str, ...]) -> Iterator[dict[str, float]]:
    """Sample the groups' resident memory every 0.5 s while the block runs; yields the peaks."""
    peaks = dict.fromkeys(groups, 0.0)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            for group in groups:
                peaks[group] = max(peaks[group], stack.rss_mib(group))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield peaks
    finally:
        stop.set()
        sampler.join()


def concurrency_curve(stack: Stack, plan: Plan, workers: int) -> list[CurvePoint]:
    """Both modes at each concurrency level, with the default web and worker settings."""
    io_url = stack.start_slow_api(delay=1.0)
    base = stack.start_web("web_io", "wsgi:app", BENCH_IO_URL=io_url)
    stack.start_workers(workers, BENCH_IO_URL=io_url)
    queue = handler_queue(Settings.from_env(stack.environment), stack.redis, "io_worker")
    points = []
    try:
        for mode in ("web", "worker"):
            for conversations in plan.curve:
                with peak_rss(stack, ("web_io", "workers")) as peaks:
                    load = partial(
                        run_load,
                        f"{base}/webservice/io_{mode}",
                        loyjoy_body({}),
                        conversations,
                        plan.curve_seconds,
                        timeout=defaults.MAX_BUDGET + 10,
                    )
                    measured = guarded(load, stack.pids, tries=1)
                points.append(
                    CurvePoint(
                        mode, conversations, measured.value, peaks["web_io"], peaks["workers"], measured.other_cores
                    )
                )
                drain(queue)
    finally:
        for group in ("web_io", "workers", "slow_api"):
            stack.stop(group)
    return points


def drain(queue: Queue, timeout: float = 30.0) -> None:
    """Drop the jobs still queued by a run and wait for the running ones, before the next run."""
    queue.empty()
    started = StartedJobRegistry(queue=queue)
    deadline = time.monotonic() + timeout
    while started.get_job_count() and time.monotonic() < deadline:
        time.sleep(0.1)


@dataclass(frozen=True)
class RedisCost:
    """Scenario 5a: Redis commands and bytes per done call, idle traffic subtracted."""

    mode: str
    calls: int
    commands_per_call: float
    bytes_per_call: float
    commands: dict[str, float]


def _redis_counters(stack: Stack) -> tuple[dict[str, int], int]:
    commands = {
        name.removeprefix("cmdstat_"): int(stats["calls"])
        for name, stats in stack.redis.info("commandstats").items()
        if name != "cmdstat_info"
    }
    stats = stack.redis.info("stats")
    return commands, int(stats["total_net_input_bytes"]) + int(stats["total_net_output_bytes"])


def _traffic(stack: Stack, during: Callable[[], Any]) -> tuple[dict[str, int], int, Any]:
    commands_before, bytes_before = _redis_counters(stack)
    value = during()
    commands_after, bytes_after = _redis_counters(stack)
    delta = {name: calls - commands_before.get(name, 0) for name, calls in commands_after.items()}
    return {name: calls for name, calls in delta.items() if calls}, bytes_after - bytes_before, value


def redis_cost(stack: Stack, plan: Plan, workers: int) -> list[RedisCost]:
    """Count what each done call costs Redis, in each mode and for the raw RQ round trip."""
    stack.start_workers(workers)
    base = stack.start_web("web_cost", "wsgi:app")
    raw = stack.start_web("raw_cost", "bench.apps:create_raw_rq()")
    urls = {"web": f"{base}/webservice/echo_web", "worker": f"{base}/webservice/echo_worker"}
    urls["raw RQ round trip"] = f"{raw}/webservice/echo_worker"
    costs = []
    try:
        idle_commands, idle_bytes, _ = _traffic(stack, lambda: time.sleep(plan.cost_seconds))
        for mode, url in urls.items():
            load: Callable[[], LoadResult] = partial(
                run_load, url, loyjoy_body({}), plan.connections, plan.cost_seconds
            )
            commands, traffic, result = _traffic(stack, load)
            calls = max(1, result.done)
            per_call = {
                name: (calls_made - idle_commands.get(name, 0)) / calls
                for name, calls_made in commands.items()
                if calls_made - idle_commands.get(name, 0) > 0
            }
            costs.append(RedisCost(mode, result.done, sum(per_call.values()), (traffic - idle_bytes) / calls, per_call))
    finally:
        for group in ("web_cost", "raw_cost", "workers"):
            stack.stop(group)
    return costs


@dataclass(frozen=True)
class Retention:
    """Scenario 5b: Redis memory and keys before many worker calls, at their end, after retention."""

    calls: int
    result_ttl: int
    keys_before: int
    keys_peak: int
    keys_after: int
    memory_before: int
    memory_peak: int
    memory_after: int
    seconds_to_baseline: float | None
    keys_left: dict[str, int]  # key: seconds to live (-1: none)

    @property
    def nothing_of_the_calls_left(self) -> bool:
        """Every key beyond the start expires, or is RQ's set of queue names (one per deployment)."""
        return all(ttl > 0 or key == "rq:queues" for key, ttl in self.keys_left.items())


def retention(stack: Stack, plan: Plan, workers: int, result_ttl: int = 10) -> Retention:
    """Drive ``plan.memory_calls`` worker calls with a short retention, then watch Redis shrink back."""
    stack.redis.flushall()  # start from an empty Redis, not from what earlier scenarios kept
    stack.start_workers(workers)
    base = stack.start_web("web_retention", "wsgi:app", FLOWHOOK_RESULT_TTL=str(result_ttl))
    url = f"{base}/webservice/echo_worker"
    try:
        time.sleep(1)  # let the workers' start-up writes settle
        keys_before, memory_before = stack.redis.dbsize(), int(stack.redis.info("memory")["used_memory"])
        present = set(stack.redis.keys("*"))
        probe = run_load(url, loyjoy_body({}), plan.connections, 1.0)
        calls = probe.done
        while calls < plan.memory_calls:
            seconds = min(60.0, max(1.0, (plan.memory_calls - calls) / max(probe.rate, 1.0)))
            calls += run_load(url, loyjoy_body({}), plan.connections, seconds).done
        keys_peak, memory_peak = stack.redis.dbsize(), int(stack.redis.info("memory")["used_memory"])
        ended = time.monotonic()
        back: float | None = None
        while time.monotonic() - ended < plan.retention_wait:
            if stack.redis.dbsize() <= keys_before:
                back = time.monotonic() - ended
                break
            time.sleep(2)
        return Retention(
            calls,
            result_ttl,
            keys_before,
            keys_peak,
            stack.redis.dbsize(),
            memory_before,
            memory_peak,
            int(stack.redis.info("memory")["used_memory"]),
            back,
            {
                key.decode(): int(stack.redis.ttl(key))
                for key in sorted(cast(set[bytes], set(stack.redis.keys("*")) - present))
            },
        )
    finally:
        stack.stop("web_retention")
        stack.stop("workers")


@dataclass(frozen=True)
class SlowBackEnd:
    """Scenario 6: conversations whose back end takes longer than the budget, polled as a flow does."""

    conversations: int
    delay: float
    direct_s: list[float]  # each direct request to the back end, all at once: the physical floor
    done_after_s: list[float]  # each conversation, from its first call to its `done`
    calls: list[int]  # calls each conversation made, the first included
    not_done: int

    @property
    def last_direct(self) -> float:
        return max(self.direct_s)

    @property
    def median_done(self) -> float:
        return statistics.median(self.done_after_s)

    @property
    def last_done(self) -> float:
        return max(self.done_after_s)


def _direct(url: str) -> float:
    started = time.monotonic()
    requests.get(url, timeout=60)
    return time.monotonic() - started


def _conversation(url: str, gap: float) -> tuple[float, int, str]:
    """Call, then call again ``gap`` s after each `pending`, as a user pressing "check again" does."""
    body: dict[str, Any] = {"process_instance_id": f"slow-{uuid.uuid4().hex}", "variables": {}}
    started = time.monotonic()
    calls = 0
    with requests.Session() as session:
        while True:
            calls += 1
            answer = session.post(url, json=body, timeout=60).json()["data"]["variables"]
            if answer["io_worker_status"] != "pending":
                return time.monotonic() - started, calls, answer["io_worker_status"]
            body["variables"] = answer
            time.sleep(gap)


def slow_back_end(stack: Stack, plan: Plan, workers: int) -> SlowBackEnd:
    """Many conversations at once against a back end slower than the budget, through the workers."""
    io_url = stack.start_slow_api(delay=plan.slow_delay)
    base = stack.start_web("web_slow", "wsgi:app", BENCH_IO_URL=io_url)
    stack.start_workers(workers, BENCH_IO_URL=io_url)
    count = plan.slow_conversations
    try:
        with ThreadPoolExecutor(max_workers=count) as threads:
            direct = list(threads.map(_direct, [io_url] * count))
            ended = list(threads.map(lambda _: _conversation(f"{base}/webservice/io_worker", 1.0), range(count)))
    finally:
        for group in ("web_slow", "workers", "slow_api"):
            stack.stop(group)
    done = [(seconds, calls) for seconds, calls, status in ended if status == "done"]
    return SlowBackEnd(
        count,
        plan.slow_delay,
        direct,
        [seconds for seconds, _ in done],
        [calls for _, calls in done],
        count - len(done),
    )


@dataclass(frozen=True)
class InFlight:
    """Scenario 7: one pool worker's resident memory with this many jobs waiting on I/O at once."""

    jobs: int
    started: int
    rss_mib: float


def jobs_in_flight(stack: Stack, plan: Plan) -> tuple[float, list[InFlight]]:
    """Idle RSS of one worker process, and its RSS with each number of jobs in flight."""
    io_url = stack.start_slow_api(delay=10.0)
    most = max(plan.in_flight)
    stack.start_workers(1, BENCH_IO_URL=io_url, FLOWHOOK_WORKER_CONCURRENCY=str(most))
    settings = Settings.from_env(stack.environment)
    store = JobStore(stack.redis, settings)
    handler = discover(settings)["io_worker"]
    worker = stack.processes["workers"][0].pid
    figures = []
    try:
        time.sleep(1)
        idle = stack.process_rss_mib(worker)
        for jobs in plan.in_flight:
            for number in range(jobs):
                store.start(handler, Envelope(f"flight-{jobs}-{number}-{uuid.uuid4().hex}"), {})
            registry = StartedJobRegistry(queue=store.queue("io_worker"))
            deadline = time.monotonic() + 8  # well inside the back end's 10 s
            while registry.get_job_count() < jobs and time.monotonic() < deadline:
                time.sleep(0.1)
            figures.append(InFlight(jobs, registry.get_job_count(), stack.process_rss_mib(worker)))
            drain(store.queue("io_worker"))
    finally:
        for group in ("workers", "slow_api"):
            stack.stop(group)
    return idle, figures


# Scenario 9: how long a user takes to press "Check again" once the flow shows it.
REACTION = 1.0
# The recipes of scenario 9: today's (every `pending` is a click; a poll waits at most the budget,
# FLOWHOOK_POLL_WAIT set to it) and the new one (the flow jumps back at once when `<h>_next` is
# `poll`; polls held up to the default poll wait).
BEFORE = "before"
AFTER = "after"


@dataclass(frozen=True)
class Clicks:
    """Scenario 9: conversations following one flow recipe against a back end of ``delay`` seconds."""

    recipe: str
    delay: float
    clicks: list[int]  # "Check again" presses each conversation needed
    turns_s: list[float]  # each conversation's longest turn: from the user's click (or message) to what it sees
    calls: list[int]
    not_done: int


def _recipe_conversation(url: str, delay: float, recipe: str) -> tuple[int, float, int, str]:
    """One conversation as the flow recipe runs it; returns its clicks, longest turn, calls and last status."""
    body: dict[str, Any] = {"process_instance_id": f"clicks-{uuid.uuid4().hex}", "variables": {"seconds": str(delay)}}
    clicks = calls = 0
    longest = 0.0
    turn_began = time.monotonic()
    with requests.Session() as session:
        while True:
            calls += 1
            answer = session.post(url, json=body, timeout=60).json()["data"]["variables"]
            longest = max(longest, time.monotonic() - turn_began)
            status = answer["slow_work_status"]
            if status != "pending":
                return clicks, longest, calls, status
            body["variables"] = {**body["variables"], **answer}
            if recipe == AFTER and answer.get("slow_work_next") == "poll":
                continue  # the flow's automatic jump back: the same turn
            clicks += 1  # the message and the "Check again" button
            time.sleep(REACTION)
            turn_began = time.monotonic()


def clicks(stack: Stack, plan: Plan, workers: int) -> list[Clicks]:
    """Conversations of both recipes at once against back ends of each of the plan's speeds."""
    io_url = stack.start_slow_api(delay=1.0)
    budget = str(defaults.BUDGET)
    urls = {
        BEFORE: stack.start_web("web_clicks_before", "wsgi:app", BENCH_IO_URL=io_url, FLOWHOOK_POLL_WAIT=budget),
        AFTER: stack.start_web("web_clicks_after", "wsgi:app", BENCH_IO_URL=io_url),
    }
    stack.start_workers(workers, BENCH_IO_URL=io_url)
    runs = [
        (recipe, delay)
        for recipe in (BEFORE, AFTER)
        for delay in plan.click_delays
        for _ in range(plan.click_conversations)
    ]
    try:
        with ThreadPoolExecutor(max_workers=len(runs)) as threads:
            ended = list(
                threads.map(
                    lambda run: _recipe_conversation(f"{urls[run[0]]}/webservice/slow_work", run[1], run[0]), runs
                )
            )
    finally:
        for group in ("web_clicks_before", "web_clicks_after", "workers", "slow_api"):
            stack.stop(group)
    figures = []
    for recipe in (BEFORE, AFTER):
        for delay in plan.click_delays:
            mine = [end for run, end in zip(runs, ended, strict=True) if run == (recipe, delay)]
            figures.append(
                Clicks(
                    recipe,
                    delay,
                    [clicked for clicked, _, _, _ in mine],
                    [turn for _, turn, _, _ in mine],
                    [made for _, _, made, _ in mine],
                    sum(status != "done" for _, _, _, status in mine),
                )
            )
    return figures
