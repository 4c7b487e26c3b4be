"""`make soak` (`python -m bench.soak`): minutes of mixed calls and polls against the whole stack.

Starts its own Redis, the web service under gunicorn and RQ workers, as `make run` does.
Conversations call fast, slow (pending, then polled), inline, invalid and failing handlers, and
resend some slow calls at once as LoyJoy does. Prints calls sent, terminal answers, duplicate
executions, Redis keys and memory before and after retention, and web and worker RSS over time,
and writes them into docs/reliability.md between its result markers.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import random
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import report
from bench.stack import ROOT, Stack
from flowhook import keys

OUTPUT = ROOT / "docs" / "reliability.md"
START = "<!-- soak:results:start -->"
END = "<!-- soak:results:end -->"

# What each kind of call is, how often it comes, and the answer the flow must end with.
MIX: dict[str, tuple[float, str]] = {
    "fast": (0.40, "done"),
    "slow": (0.10, "done"),
    "inline": (0.20, "done"),
    "invalid": (0.10, "invalid"),
    "failing": (0.10, "failed"),
    "resent": (0.10, "done"),
}
TERMINAL = {"done", "failed", "invalid"}
# Longest a flow keeps polling one call before it counts it as never answered.
GIVE_UP_AFTER = 60.0
SAMPLE_EVERY = 10.0
# RQ's set of queue names: one key per deployment, written at the first enqueue, kept for good.
RQ_PERMANENT = {"rq:queues"}
# Keys of the deployment or of a live process, not of a call: each queue's job figures
# (flowhook/keys.py, 7 days, renewed by every job), the record and the queues' locks a running
# scheduler renews at each heartbeat (61 s), and RQ 3's lock on its group registries' clean-up (1 s).
LIVE_PREFIXES = (keys.job_figures(""), "rq:scheduler:", "rq:scheduler-lock:", "rq:clean_groups")


@dataclass
class Tally:
    """What the conversations did and got, shared by their threads."""

    requests: int = 0
    errors: int = 0
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    terminal: collections.Counter[str] = field(default_factory=collections.Counter)
    unexpected: list[str] = field(default_factory=list)
    # Numbers of the calls whose handler must have run exactly once.
    executed: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class Conversation:
    """One thread of LoyJoy conversations: a new conversation per call, as many as time allows."""

    def __init__(self, url: str, number: int, tally: Tally, seed: int) -> None:
        self.url = url
        self.number = number
        self.tally = tally
        self.random = random.Random(seed)  # noqa: S311 - a repeatable mix of calls, not a secret
        self.session = requests.Session()

    def post(
        self, handler: str, instance: str, variables: dict[str, str], client: requests.Session | None = None
    ) -> dict[str, str]:
        """One WebService call, on this conversation's connection unless ``client`` is given."""
        self.tally.add(requests=1)
        body = {"process_instance_id": instance, "variables": variables}
        response = (client or self.session).post(f"{self.url}/webservice/{handler}", json=body, timeout=25)
        response.raise_for_status()
        answer: dict[str, str] = response.json()["data"]["variables"]
        return answer

    def run_until(self, end: float) -> None:
        kinds, weights = zip(*((kind, weight) for kind, (weight, _) in MIX.items()), strict=True)
        count = 0
        while time.monotonic() < end:
            count += 1
            kind = self.random.choices(kinds, weights)[0]
            number = f"{self.number}-{count}"
            with self.tally.lock:
                self.tally.calls[kind] += 1
            try:
                status, answer = self.one_call(kind, number)
            except (requests.RequestException, ValueError, KeyError) as error:
                self.tally.add(errors=1)
                self._unexpected(f"{kind} {number}: {type(error).__name__}: {error}")
                continue
            if status in TERMINAL:
                with self.tally.lock:
                    self.tally.terminal[kind] += 1
            if status != MIX[kind][1]:
                self._unexpected(f"{kind} {number}: {answer}")

    def one_call(self, kind: str, number: str) -> tuple[str, dict[str, str]]:
        """Make one call of ``kind`` as a flow would, polling while pending; the last status and answer."""
        instance = f"soak-{number}"
        handler, variables = self._request(kind, number)
        if kind != "invalid":
            with self.tally.lock:
                self.tally.executed.add(number)
        if kind == "resent":

            def resend(_: int) -> tuple[dict[str, str], float]:
                """The answer, and how long after the pair was sent it came."""
                with requests.Session() as fresh:  # a resend arrives on a connection of its own
                    reply = self.post(handler, instance, variables, fresh)
                return reply, time.monotonic() - sent

            sent = time.monotonic()
            with ThreadPoolExecutor(2) as pair:
                (first, first_after), (second, second_after) = pair.map(resend, range(2))
            # What the flow sees: one job per message. A job is named only while pending (a done answer
            # carries an empty `<h>_job`), so one resend answered pending and the other done is one job.
            jobs = {reply[f"{handler}_job"] for reply in (first, second)} - {""}
            if len(jobs) > 1:
                self._unexpected(
                    f"resent {number} (work {variables['seconds']} s): two jobs {first} {second}, "
                    f"answered {first_after:.2f} s and {second_after:.2f} s after they were sent"
                )
            answer = first
        else:
            answer = self.post(handler, instance, variables)
        given_up_at = time.monotonic() + GIVE_UP_AFTER
        while answer[f"{handler}_status"] == "pending" and time.monotonic() < given_up_at:
            answer = self.post(handler, instance, {**variables, **answer})
        return answer[f"{handler}_status"], answer

    def _request(self, kind: str, number: str) -> tuple[str, dict[str, str]]:
        if kind in ("slow", "resent"):
            return "slow", {"number": number, "seconds": f"{self.random.uniform(0.3, 0.8):.2f}"}
        if kind == "invalid":
            return "fast", {"number": number, "count": "many"}
        if kind == "fast":
            return "fast", {"number": number, "count": "1"}
        return kind, {"number": number}

    def _unexpected(self, what: str) -> None:
        with self.tally.lock:
            self.tally.unexpected.append(what)


@dataclass
class Sample:
    seconds: float
    web_mib: float
    workers_mib: float
    keys: int
    # Redis's memory for keys and values (used_memory_dataset), without per-connection buffers.
    data_mib: float


def sample(stack: Stack, started: float) -> Sample:
    memory = stack.redis.info("memory")
    return Sample(
        seconds=time.monotonic() - started,
        web_mib=stack.rss_mib("web"),
        workers_mib=stack.rss_mib("workers"),
        keys=int(stack.redis.dbsize()),
        data_mib=int(memory["used_memory_dataset"]) / 2**20,
    )


def leftovers(new_keys: set[str]) -> set[str]:
    """The keys among ``new_keys`` that retention should have removed: those of calls and jobs."""
    return {key for key in new_keys if key not in RQ_PERMANENT and not key.startswith(LIVE_PREFIXES)}


def key_names(stack: Stack) -> set[str]:
    return {key.decode() for key in stack.redis.scan_iter(count=1000)}


def main(argv: list[str] | None = None) -> int:
    """Run the soak; returns 1 when a call was lost, answered wrongly or run twice."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the load runs (default 3)")
    parser.add_argument("--conversations", type=int, default=24, help="conversations at once (default 24)")
    parser.add_argument("--workers", type=int, default=4, help="RQ workers (default 4)")
    parser.add_argument("--result-ttl", type=int, default=60, help="FLOWHOOK_RESULT_TTL for the run (default 60)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="report file (default docs/reliability.md)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the finally stops the stack

    with tempfile.TemporaryDirectory(prefix="flowhook-soak-") as directory:
        executions = Path(directory) / "executions"
        stack = Stack(
            Path(directory),
            FLOWHOOK_HANDLERS="bench.soak_handlers",
            FLOWHOOK_RESULT_TTL=str(args.result_ttl),
            FLOWHOOK_LOG_LEVEL="WARNING",
            SOAK_EXECUTIONS=str(executions),
        )
        try:
            stack.start_redis()
            url = stack.start_web("web", "wsgi:app")
            stack.start_workers(args.workers)
            text = soak(stack, url, executions, args)
        finally:
            stack.stop_all()
    print(text)
    report.write(args.output, text, START, END)
    print(f"written to {args.output}")
    return 0 if "**FAILED**" not in text else 1


def soak(stack: Stack, url: str, executions: Path, args: argparse.Namespace) -> str:
    """Load, then retention; returns the report section."""
    started = time.monotonic()
    keys_before = key_names(stack)
    before = sample(stack, started)
    samples = [before]
    tally = Tally()
    end = started + args.minutes * 60
    conversations = [Conversation(url, number, tally, seed=number) for number in range(args.conversations)]
    threads = [threading.Thread(target=c.run_until, args=(end,), daemon=True) for c in conversations]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        next_sample = time.monotonic() + SAMPLE_EVERY
        for thread in threads:
            thread.join(timeout=max(0.0, next_sample - time.monotonic()))
        samples.append(sample(stack, started))
        print(f"soak: {samples[-1].seconds:4.0f} s, {tally.requests:,} requests", flush=True)
    load_seconds = time.monotonic() - started

    # Retention: results live FLOWHOOK_RESULT_TTL, registries are trimmed by the workers' maintenance.
    retention_deadline = time.monotonic() + args.result_ttl + 120
    while leftovers(key_names(stack) - keys_before) and time.monotonic() < retention_deadline:
        time.sleep(5)
    new_keys = {key: int(stack.redis.ttl(key)) for key in sorted(key_names(stack) - keys_before)}
    counts = collections.Counter(executions.read_text().split()) if executions.exists() else collections.Counter()
    figures = Figures(
        tally=tally,
        samples=samples,
        after=sample(stack, started),
        load_seconds=load_seconds,
        retention_seconds=time.monotonic() - started - load_seconds,
        duplicates=sum(count - 1 for count in counts.values() if count > 1),
        lost=len(tally.executed - set(counts)),
        stray=len(set(counts) - tally.executed),
        new_keys=new_keys,
    )
    return render(args, figures)


@dataclass
class Figures:
    """What one soak measured."""

    tally: Tally
    samples: list[Sample]
    after: Sample  # once retention has run
    load_seconds: float
    retention_seconds: float
    duplicates: int
    lost: int
    stray: int
    # Keys that were not there before the load, with their TTL (-1: none), after retention.
    new_keys: dict[str, int]


def render(args: argparse.Namespace, figures: Figures) -> str:
    """The report section, between its markers."""
    tally, samples, after = figures.tally, figures.samples, figures.after
    before, after_load, load_seconds = samples[0], samples[-1], figures.load_seconds
    duplicates, lost, stray = figures.duplicates, figures.lost, figures.stray
    calls = sum(tally.calls.values())
    terminal = sum(tally.terminal.values())
    ok = terminal == calls and not duplicates and not lost and not tally.errors and not tally.unexpected
    ok = ok and not leftovers(set(figures.new_keys))
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        f"Measured {when} by `make soak` (`python -m bench.soak --minutes {args.minutes:g} --conversations "
        f"{args.conversations} --result-ttl {args.result_ttl}`) on {report.machine()}: gunicorn with the "
        f"shipped settings, {args.workers} RQ workers, a private Redis; every process on this machine.",
        "",
        f"**Verdict: {'passed' if ok else '**FAILED**'}.**",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| load | {load_seconds:.0f} s, {args.conversations} conversations at once |",
        f"| HTTP requests sent (calls, polls, resends) | {tally.requests:,} ({tally.requests / load_seconds:.0f}/s) |",
        f"| calls started | {calls:,} |",
        f"| terminal answers reached | {terminal:,} ({'all' if terminal == calls else 'NOT ALL'}) |",
        f"| answers other than expected, HTTP errors | {len(tally.unexpected)}, {tally.errors} |",
        f"| handler executions expected, lost, run twice | {len(tally.executed):,}, {lost}, {duplicates} |",
        f"| executions of no call (should be 0) | {stray} |",
        f"| Redis keys: before, after the load, {figures.retention_seconds:.0f} s later | {before.keys}, "
        f"{after_load.keys:,}, {after.keys} |",
        f"| Redis data MiB (used_memory_dataset): before, after the load, after retention | {before.data_mib:.2f}, "
        f"{after_load.data_mib:.2f}, {after.data_mib:.2f} |",
        "",
        "Keys left after retention that were not there before: "
        + (", ".join(f"`{key}` (TTL {ttl})" for key, ttl in figures.new_keys.items()) or "none")
        + ".",
        "",
        "| kind | share | expected | calls | terminal |",
        "| --- | ---: | --- | ---: | ---: |",
        *(
            f"| {kind} | {weight:.0%} | {expected} | {tally.calls[kind]:,} | {tally.terminal[kind]:,} |"
            for kind, (weight, expected) in MIX.items()
        ),
        "",
        "Resident memory over the load (web: gunicorn's master and its workers; workers: the RQ workers"
        " with their scheduler processes):",
        "",
        "| s | web MiB | workers MiB | Redis keys | Redis data MiB |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {s.seconds:.0f} | {s.web_mib:.1f} | {s.workers_mib:.1f} | {s.keys:,} | {s.data_mib:.2f} |"
            for s in samples
        ),
        "",
        drift(samples),
    ]
    if tally.unexpected:
        lines += ["", "First unexpected answers:", "", *(f"- `{what}`" for what in tally.unexpected[:10])]
    lines.append(END)
    return "\n".join(lines)


def drift(samples: list[Sample]) -> str:
    """RSS growth from the first minute to the end of the load: flat means a few per cent at most."""
    settled = [s for s in samples if s.seconds >= 60] or samples
    first, last = settled[0], samples[-1]

    def change(start: float, end: float) -> str:
        return f"{(end - start) / start:+.1%}" if start else "n/a"

    return (
        f"RSS from {first.seconds:.0f} s to {last.seconds:.0f} s: web {change(first.web_mib, last.web_mib)}, "
        f"workers {change(first.workers_mib, last.workers_mib)}."
    )


if __name__ == "__main__":
    sys.exit(main())
