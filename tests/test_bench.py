"""The benchmark harness keeps working: its smoke mode runs every scenario for a second or so.

A minute or more (the processes each scenario starts, more than its second of load), and the harness
has no option to run fewer scenarios into a report: `slow`, in `make test` only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(300)  # every scenario once, a second or so each, and the processes they start
def test_bench_smoke_runs_every_scenario_and_writes_its_report(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nprose kept\n\n<!-- bench:results:start -->\nold\n<!-- bench:results:end -->\n")
    command = [sys.executable, "-m", "bench", "--smoke", "--output", str(report)]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    text = report.read_text()
    assert text.startswith("# Benchmarks\n\nprose kept\n")
    assert "old" not in text
    for section in (
        "### Targets",
        "### 1.",
        "### 2.",
        "### 3. Poll wake-up",
        "### 4.",
        "### 5. Redis cost",
        "### 6.",
        "### 7.",
        "### 8. The cost of metrics",
        "### 9. Clicks",
    ):
        assert section in text
    assert "| Flowhook echo, web |" in text
    assert "| web | 4 |" in text  # a point of the concurrency curve
    assert "- echo, worker: metrics on do" in text
    # Every throughput table's rows carry a measured rate: each scenario drove calls that were answered.
    # A row: | name | calls/s [IQR, where rounds are] | ratio ... |
    rates = re.findall(r"^\| ([^|]+) \| ([\d,]+)(?: \[[\d,]+\])? \| [\d.]+ x", text, flags=re.MULTILINE)
    assert any(name == "Flowhook echo, web" for name, _ in rates), text
    assert all(int(rate.replace(",", "")) > 0 for _, rate in rates), rates
