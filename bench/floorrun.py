"""One run of the ``floor`` phase: ``bench/floor.py`` under the load client, reduced to figures.

The real runs' us/dl depends on the machine as much as on doc-review (Python
ran ~2.5x slower on one 2-core machine than on another).  The floor server
does only what no SSE server can skip: encode a frame once, write it to each
stream over loopback TCP.  Measured with the same load client, pinning and
definitions as the real runs, it is the reference a real run's us/dl is set
against (``report.floor_ratios``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import report
from floor import DOC_PATH
from procs import Child, CpuMeter, Processes, core_busy, open_streams, rss_bytes
from stack import BENCH, PY, cpu_layout

DRAIN_PATIENCE_S = 5.0  # stop waiting for the streams after this long without progress


def run_floor(cfg: Any, procs: Processes, say: Callable[[str], None]) -> dict[str, Any]:
    """Start the floor server and a load client, open ``cfg.streams``, publish, drain; the run's figures."""
    workdir = Path(tempfile.mkdtemp(prefix="docreview-floor-"))
    server: Child | None = None
    clients: list[Child] = []
    try:
        server_cpus, client_cpus, layout = cpu_layout(1, cfg.pin)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        count = round(cfg.rate * cfg.duration)
        server = Child(procs, [PY, str(BENCH / "floor.py"), "--batch-ms", str(cfg.batch_ms),
                               "--max-seconds", str(cfg.duration + cfg.drain_timeout + 300)],
                       cpus=server_cpus[0], env=env, stderr_path=workdir / "floor.err")
        port = server.wait("listening", timeout=30)["port"]
        say(f"  floor server on 127.0.0.1:{port}; {layout}")

        specs: list[list[dict]] = [[] for _ in range(cfg.clients)]
        for j in range(cfg.streams):
            specs[j % cfg.clients].append({"host": "127.0.0.1", "port": port, "doc": DOC_PATH, "doc_index": 0,
                                           "token": "floor", "slow": False, "after": 0, "user": f"floor{j}"})
        for c, streams in enumerate(specs):
            spec_path = workdir / f"client-{c}.json"
            spec_path.write_text(json.dumps({"streams": streams, "docs": 1, "seed": c, "expected_events": count + 64,
                                             "connect_concurrency": cfg.connect_concurrency}))
            clients.append(Child(procs, [PY, str(BENCH / "loadclient.py"), str(spec_path)], cpus=client_cpus,
                                 env=env, stderr_path=workdir / f"client-{c}.err"))
        pids = {"server": [server.proc.pid], "clients": [c.proc.pid for c in clients], "bench": [os.getpid()]}
        meters = {name: CpuMeter() for name in pids}

        def snapshot() -> dict:
            return {"t": time.time(), **{name: meters[name].read(p) for name, p in pids.items()},
                    "cores": core_busy()}

        marks: dict[str, float] = {}
        rss_before = rss_bytes(server.proc.pid) or 0
        marks["open_start"], marks["open_end"] = open_streams(clients)
        rss_open = rss_bytes(server.proc.pid) or 0
        streaming = sum(c.ask("status", "status")["streaming"] for c in clients)
        say(f"  {streaming}/{cfg.streams} streams open in {marks['open_end'] - marks['open_start']:.1f}s")

        snaps = {"start": snapshot()}
        marks["publish_start"] = start_at = time.time() + 0.3
        server.send(cmd="go", start_at=start_at, count=count, rate=cfg.rate, body_bytes=cfg.body_bytes)
        done = server.wait("done", timeout=cfg.duration + 60)
        marks["publish_end"] = time.time()
        snaps["end"] = snapshot()

        # Drain: until every stream holds every id, or progress stops.
        marks["drain_start"] = time.time()
        last_frames, last_progress = -1, time.monotonic()
        drained = False
        while time.monotonic() - last_progress < DRAIN_PATIENCE_S and \
                time.time() - marks["drain_start"] < cfg.drain_timeout:
            statuses = [c.ask("status", "status") for c in clients]
            if all(low >= count for s in statuses for low in s["min_last"].values()):
                drained = True
                break
            frames = sum(s["frames"] + s["connects"] for s in statuses)
            if frames != last_frames:
                last_frames, last_progress = frames, time.monotonic()
            time.sleep(0.1)
        marks["drained"] = time.time()
        snaps["drained"] = snapshot()

        outputs = []
        for c, client in enumerate(clients):
            path = str(workdir / f"client-{c}")
            client.ask("finish", "finished", timeout=60, out=path)
            outputs.append(path)
        server.proc.stdin.close()  # EOF: the floor server exits
        server.proc.wait(timeout=10)
        say(f"  drained in {marks['drained'] - marks['drain_start']:.1f}s{'' if drained else ' (gave up: see lost)'}")
        return analyse({"config": {**cfg.__dict__, "layout": layout, "events": count}, "marks": marks,
                        "snapshots": snaps, "done": done, "drained": drained, "client_outputs": outputs,
                        "rss": {"before": rss_before, "open": rss_open}})
    finally:
        for child in clients + ([server] if server else []):
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait(timeout=10)
        if os.environ.get("BENCH_KEEP_WORKDIR") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"  kept {workdir}")


def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    """The floor run's figures, under the real runs' names and definitions (``report``).

    The columns the summary shares with the real runs that have no meaning here (POSTs, SQL, the
    write path) are None.
    """
    cfg, marks, snaps = raw["config"], raw["marks"], raw["snapshots"]
    count = cfg["events"]
    read = report.deliveries(raw["client_outputs"], [0], [count])
    pub_wall = snaps["end"]["t"] - snaps["start"]["t"]
    drain_wall = snaps["drained"]["t"] - snaps["start"]["t"]
    server_cpu_pub = snaps["end"]["server"] - snaps["start"]["server"]
    server_cpu_all = snaps["drained"]["server"] - snaps["start"]["server"]
    client_cpu = snaps["end"]["clients"] - snaps["start"]["clients"]
    a, b = snaps["start"]["cores"], snaps["end"]["cores"]
    machine_busy = sum(b[c][0] - a[c][0] for c in a)
    ours = sum(snaps["end"][name] - snaps["start"][name] for name in ("server", "clients", "bench"))
    frames = sum(m["frames"] for m in read.metas)
    rss = raw["rss"]
    figures = {
        "latency_ms": report.percentiles(read.lat),
        "delivered": read.delivered, "expected": read.expected, "lost": read.expected - read.delivered,
        "duplicated": read.dups, "out_of_order": read.ooo, "no_timestamp": read.no_stamp,
        "events": count,
        "publish_lag_ms_max": raw["done"]["lag_ms_max"],
        "deliveries_per_s": round(read.delivered / drain_wall, 1) if drain_wall else None,
        "frames_per_write": round(read.delivered / raw["done"]["writes"], 2) if raw["done"]["writes"] else None,
        "server_cpu_pct": round(100 * server_cpu_pub / pub_wall, 1),
        "server_cpu_s": round(server_cpu_all, 2),
        "us_per_delivery": round(1e6 * server_cpu_all / read.delivered, 2) if read.delivered else None,
        "client_cpu_pct": round(100 * client_cpu / pub_wall, 1),
        "other_load_pct": round(100 * max(0.0, machine_busy - ours) / pub_wall, 1),
        "rss_growth_mb_per_1000": round((rss["open"] - rss["before"]) / 2**20 * 1000 / cfg["streams"], 2),
        "open_s": round(marks["open_end"] - marks["open_start"], 2),
        "drained": raw["drained"],
        "drain_s": round(marks["drained"] - marks["drain_start"], 2),
        "bytes_per_delivery": round(sum(m["bytes"] for m in read.metas) / frames) if frames else None,
        "streams_behind_at_end": {"count": sum(1 for m in read.metas if m["last"] < count)},
        "post_latency_ms": {"p50": None, "p99": None, "max": None},
        "queries_per_event": None,
        "us_per_delivery_fanout": None,
    }
    return {"config": cfg, "figures": figures, "marks": marks}
