"""``make bench`` still works: a small run of the real harness loses and duplicates nothing.

It asserts counts, never a timing: the machine running the suite may be busy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need, port_open

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


def run_bench(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--streams", "50", "--rate", "20", "--duration", "5",
               "--warmup", "0", "--drain-timeout", "20", "--out", str(tmp_path), "--label", "smoke",
               "--timeout", "240", *args]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=280)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    reports = list(tmp_path.glob("*-smoke.json"))
    assert len(reports) == 1, done.stdout[-4000:]
    assert reports[0].with_suffix(".png").exists()
    return json.loads(reports[0].read_text())


def check(run: dict, streams: int = 50) -> None:
    figures = run["figures"]
    assert figures["events"] >= figures["posts_created"] > 0  # a timed-out POST may still commit
    assert figures["expected"] == streams * figures["events"]
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert figures["out_of_order"] == 0
    assert figures["latency_ms"]["n"] == figures["delivered"]


def test_a_small_run_loses_and_duplicates_nothing(tmp_path):
    document = run_bench(tmp_path, "--phases", "steady")
    [run] = document["runs"]
    check(run)


@pytest.mark.services
def test_two_processes_on_redis_lose_and_duplicate_nothing(tmp_path):
    need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
    document = run_bench(tmp_path, "--workers", "2", env={"REDIS_URL": redis_url})
    [run] = document["runs"]
    assert run["config"]["layer"] == "redis" and run["config"]["workers"] == 2
    check(run)
