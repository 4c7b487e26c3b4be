"""The failover kit keeps working: a seconds-long run of its single-Redis crash writes its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_failover_kit_crashes_redis_under_conversations_and_writes_its_table(tmp_path: Path) -> None:
    report = tmp_path / "reliability.md"
    report.write_text(
        "# Reliability\n\nprose kept\n\n<!-- failover:results:start -->\nold\n<!-- failover:results:end -->\n"
    )
    command = [
        sys.executable, "-m", "bench.failover", "--scenario", "aof", "--conversations", "4", "--ramp", "1",
        "--fault-at", "2", "--after-fault", "3", "--output", str(report),
    ]  # fmt: skip
    # Its exit status says whether the chats got through the crash, which is the service's business
    # (issue 14), not the kit's: a kit that breaks writes no table.
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    text = report.read_text()
    assert "| conversations | 4 (" in text, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert text.startswith("# Reliability\n\nprose kept\n")
    assert "old" not in text
    assert "**aof**: single Redis with its append-only file killed (SIGKILL)" in text
