"""The report sets each real run against the floor of its kind, and reads reports made before the floor."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import report  # noqa: E402


def a_run(label: str, us: float, *, server: str = "uvicorn", env: dict | None = None, batch_ms: float = 0.0,
          fanout: float | None = None, loop: float | None = None, post: float | None = None) -> dict:
    """A run with just the figures the summary reads."""
    figures = {
        "latency_ms": {"p50": 20.0, "p95": 30.0, "p99": 40.0, "max": 50.0, "n": 100}, "lost": 0, "duplicated": 0,
        "out_of_order": 0, "server_cpu_pct": 50.0, "us_per_delivery": us, "us_per_delivery_fanout": fanout,
        "deliveries_per_s": 98000.0, "rss_growth_mb_per_1000": 8.5, "post_latency_ms": {"p99": 17.0},
        "queries_per_event": 6.0, "client_cpu_pct": 30.0, "other_load_pct": 0.0,
        "us_per_delivery_loop_thread": loop, "us_per_post_request_thread": post,
    }
    return {"label": label, "figures": figures,
            "config": {"server": server, "server_env": env or {}, "batch_ms": batch_ms, "workers": 1}}


def document(runs: list[dict]) -> dict:
    return {"machine": {"cores": 2, "cpu": "test"}, "wall_s": 1.0, "runs": runs, "targets": []}


def test_each_run_is_set_against_the_floor_of_its_kind():
    runs = [a_run("floor-unbatched", 8.0, server="floor"), a_run("floor-batched", 2.0, server="floor", batch_ms=20),
            a_run("uvicorn-steady", 5.0, fanout=2.6), a_run("uvicorn-unbatched", 10.0, env={"SSE_COALESCE_MS": "0"})]
    ratios = {row["run"]: row for row in report.floor_ratios(runs)}
    assert set(ratios) == {"uvicorn-steady", "uvicorn-unbatched"}
    assert (ratios["uvicorn-steady"]["floor"], ratios["uvicorn-steady"]["ratio"]) == ("floor-batched", 2.5)
    assert ratios["uvicorn-steady"]["fanout_ratio"] == 1.3
    assert (ratios["uvicorn-unbatched"]["floor"], ratios["uvicorn-unbatched"]["ratio"]) == ("floor-unbatched", 1.25)
    text = report.summary(document(runs), Path("r"))
    assert "uvicorn-steady" in text.split("against the floor")[1]


def test_the_floor_is_not_a_target():
    runs = [a_run("floor-batched", 2.0, server="floor", batch_ms=20)]
    assert report.targets(runs) == []
    assert report.floor_ratios(runs) == []


def test_a_report_without_a_floor_run_reads_as_before():
    runs = [a_run("uvicorn-steady", 5.0), {"label": "uvicorn-redis2", "skipped": "no Redis"}]
    assert report.floor_ratios(runs) == []
    text = report.summary(document(runs), Path("r"))
    assert "uvicorn-steady" in text and "against the floor" not in text


def test_a_run_with_the_thread_split_says_where_its_cpu_went():
    runs = [a_run("floor-batched", 2.0, server="floor", batch_ms=20),
            a_run("uvicorn-steady", 5.0, fanout=2.6, loop=2.5, post=2100.0)]
    (row,) = report.floor_ratios(runs)
    assert row["loop_thread_ratio"] == 1.25
    text = report.summary(document(runs), Path("r"))
    assert "event-loop thread alone 1.25x" in text
    assert "event-loop thread 2.5 us per delivery, requests' sync work 2.10 ms per POST" in report.thread_split(runs[1]["figures"])
