"""Figures from a run's raw material, the targets, the JSON document and the one-screen summary.

Definitions (also in docs/performance.md):

- latency: from the writer handing the POST to its socket (the ``@T...@``
  stamp in the comment body) to the load client reading the frame, per stream
  and event, on one machine clock;
- expected: for each stream, every event its document committed after the
  stream's starting ``Last-Event-ID`` (the document's last id once the writes
  have finished); delivered: those it read; lost = expected - delivered, counted
  once the streams have drained (or stopped making progress);
- duplicated: an id read again; out of order: an id below one already read;
- server CPU: user + system time of the server process(es) from /proc, from
  the first POST until the streams have drained; per delivery = that / delivered;
  "fan-out" subtracts the write path's own cost measured in the warm-up
  (POSTs with no stream open);
- RSS growth: VmRSS after opening the streams minus before, per 1000 streams;
- reconnect: from the restarted server's port first accepting until a stream
  has a new connection *and* holds every event committed by then.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TARGET_P99_MS = 100.0
TARGET_US_UNBATCHED = 15.0
TARGET_US_BATCHED = 5.0
TARGET_RSS_MB_PER_1000 = 10.0
TARGET_RECONNECT_P99_S = 2.0


def percentile_ms(values, q: float) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    return round(float(np.percentile(values, q)) * 1000, 2)


def percentiles(values: np.ndarray, scale: float = 1000.0, digits: int = 2) -> dict[str, float | None]:
    """p50/p95/p99/max of ``values`` (seconds) in ms, or in ``scale`` units, and how many."""
    if values.size == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50) * scale, digits), "p95": round(float(p95) * scale, digits),
            "p99": round(float(p99) * scale, digits), "max": round(float(values.max()) * scale, digits),
            "n": int(values.size)}


def thread_split(figures: dict) -> str:
    """Where a run's server CPU went, by thread, when the report has it."""
    loop, post = figures.get("us_per_delivery_loop_thread"), figures.get("us_per_post_request_thread")
    if loop is None or post is None:
        return ""
    return f"; event-loop thread {loop} us per delivery, requests' sync work {post / 1000:.2f} ms per POST"


def _cpu(snapshots: dict, key: str, a: str, b: str) -> float:
    return snapshots[b][key] - snapshots[a][key]


@dataclass
class Deliveries:
    """What the load clients read, against what each stream should have read."""

    metas: list[dict]  # per stream, as the load client wrote it
    rows: list[np.ndarray]  # per stream: when event after+1+i was read (0: never)
    expected: int
    delivered: int
    expected_slow: int
    delivered_slow: int
    lat: np.ndarray  # latency of every stamped delivery to a stream that is not slow
    lat_at: np.ndarray  # the send time of each of those
    no_stamp: int  # deliveries whose event carried no send time
    recv_all: np.ndarray  # when every delivery was read, slow streams included
    dups: int
    ooo: int


def deliveries(outputs: list[str], after: list[int], final: list[int]) -> Deliveries:
    """Read the load clients' results: document d's streams should hold ids after[d]+1..final[d].

    ``outputs`` are the paths the clients were told to ``finish`` into.  Every kind of run that reads its
    streams with the load client goes through here, so lost, duplicated, out of order and latency mean the
    same in all of them.
    """
    metas: list[dict] = []
    rows: list[np.ndarray] = []
    sent_by_doc: list[dict[int, float]] = [dict() for _ in after]
    for path in outputs:
        with open(path + ".json") as fh:
            out = json.load(fh)
        recv = np.load(path + ".npz")["recv"]
        for i, meta in enumerate(out["streams"]):
            metas.append(meta)
            rows.append(recv[i])
        for doc, pairs in out["sent"].items():
            sent_by_doc[int(doc)].update((int(k), v) for k, v in pairs)
    sent = []
    for d in range(len(after)):
        n = final[d] - after[d]
        arr = np.full(max(n, 0), np.nan)
        for seq, t in sent_by_doc[d].items():
            i = seq - after[d] - 1
            if 0 <= i < n:
                arr[i] = t
        sent.append(arr)

    expected = delivered = delivered_slow = expected_slow = 0
    lats, all_recv, lat_sent = [], [], []
    for meta, row in zip(metas, rows):
        d = meta["doc_index"]
        n = final[d] - after[d]
        r = row[:n] if row.size >= n else np.concatenate([row, np.zeros(n - row.size)])
        got = r > 0
        count = int(got.sum())
        if meta["slow"]:
            expected_slow += n
            delivered_slow += count
        else:
            expected += n
            delivered += count
            lats.append(r[got] - sent[d][got])
            lat_sent.append(sent[d][got])
        all_recv.append(r[got])
    lat = np.concatenate(lats) if lats else np.zeros(0)
    lat_at = np.concatenate(lat_sent) if lat_sent else np.zeros(0)
    keep = ~np.isnan(lat)
    return Deliveries(
        metas=metas, rows=rows, expected=expected, delivered=delivered, expected_slow=expected_slow,
        delivered_slow=delivered_slow, lat=lat[keep], lat_at=lat_at[keep], no_stamp=int((~keep).sum()),
        recv_all=np.concatenate(all_recv) if all_recv else np.zeros(0),
        dups=sum(m["dups"] for m in metas), ooo=sum(m["ooo"] for m in metas),
    )


def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    """Reduce a run to its figures (and the series the PNG draws)."""
    cfg, marks = raw["config"], raw["marks"]
    docs = raw["fixtures"]["docs"]
    after = [raw["after"][d] for d in docs]
    final = [raw["final"][d] for d in docs]
    t_pub = marks["publish_start"]
    read = deliveries(raw["client_outputs"], after, final)
    metas, rows, lat, lat_at = read.metas, read.rows, read.lat, read.lat_at
    expected, delivered = read.expected, read.delivered
    expected_slow, delivered_slow = read.expected_slow, read.delivered_slow

    snaps = raw["snapshots"]
    pub_wall = snaps["end"]["t"] - snaps["start"]["t"]
    drain_wall = snaps["drained"]["t"] - snaps["start"]["t"]
    server_cpu_pub = _cpu(snaps, "server", "start", "end")
    server_cpu_all = _cpu(snaps, "server", "start", "drained")
    total_delivered = delivered + delivered_slow

    posts = raw["posts"]["records"]
    statuses: dict[str, int] = {}
    for r in posts:
        key = str(r[6]) if r[6] else (r[7] or "error")
        statuses[key] = statuses.get(key, 0) + 1
    created = [r for r in posts if r[6] == 201]
    post_lat = np.array([r[5] - r[4] for r in created])
    lag = np.array([r[4] - r[3] for r in posts])
    events = sum(f - a for f, a in zip(final, after))

    warm = raw.get("warmup") or {}
    cpu_per_post = warm["cpu_s"] / warm["created"] if warm.get("created") else None
    # The event loop's thread alone: the fan-out, and the HTTP side of the
    # POSTs; the rest is the requests' sync work (Django, DRF, the database)
    # on the thread they run in.  Reports written before this have no split.
    loop_cpu_all = _cpu(snaps, "server_loop", "start", "drained") if "server_loop" in snaps["start"] else None
    if cfg.get("write_server"):
        fanout_cpu = server_cpu_all  # the POSTs went to another process: this is the fan-out alone
    else:
        fanout_cpu = server_cpu_all - cpu_per_post * len(created) if cpu_per_post is not None else None

    cores = {}
    a, b = snaps["start"]["cores"], snaps["end"]["cores"]
    for c in a:
        busy = b[c][0] - a[c][0]
        total = b[c][1] - a[c][1]
        cores[str(c)] = round(100 * busy / total, 1) if total else None
    ours = (server_cpu_pub + _cpu(snaps, "clients", "start", "end") + _cpu(snaps, "writer", "start", "end")
            + _cpu(snaps, "bench", "start", "end") + _cpu(snaps, "write_server", "start", "end"))
    redis = raw.get("redis") or {}
    redis_cpu = None
    if redis.get("before") and redis.get("after"):
        redis_cpu = redis["after"]["cpu"] - redis["before"]["cpu"]
        ours += redis_cpu
    machine_busy = sum(b[c][0] - a[c][0] for c in a)
    other = max(0.0, machine_busy - ours)

    rss = raw["rss"]
    rss_before, rss_open, rss_end = sum(rss["before"]), sum(rss["open"]), sum(rss["end"])
    q = raw["queries"]
    queries_run = (q["end"] - q["start"]) if q["start"] is not None and q["end"] is not None else None

    figures: dict[str, Any] = {
        "latency_ms": percentiles(lat),
        "delivered": delivered, "expected": expected, "lost": expected - delivered,
        "duplicated": read.dups, "out_of_order": read.ooo, "no_timestamp": read.no_stamp,
        "resets": sum(m["resets"] for m in metas),
        "rejected_connects": _count_statuses(m["rejects"] for m in metas),
        "connect_errors": sum(m["errors"] for m in metas),
        "events": events, "posts": len(posts), "posts_created": len(created), "post_statuses": statuses,
        "posts_unsent": raw["posts"].get("unsent", 0),
        "publish_rate": round(len(created) / cfg["duration"], 1),
        "post_latency_ms": {"p50": percentile_ms(post_lat, 50), "p99": percentile_ms(post_lat, 99),
                            "max": percentile_ms(post_lat, 100)},
        "publish_lag_ms_max": percentile_ms(lag, 100),
        "deliveries_per_s": round(total_delivered / drain_wall, 1) if drain_wall else None,
        "server_cpu_pct": round(100 * server_cpu_pub / pub_wall, 1),
        "server_cpu_s": round(server_cpu_all, 2),
        "us_per_delivery": round(1e6 * server_cpu_all / total_delivered, 2) if total_delivered else None,
        "us_per_post_no_streams": round(1e6 * cpu_per_post, 1) if cpu_per_post is not None else None,
        # Approximate: the write path's cost is the warm-up's, which differs under load.
        "us_per_delivery_fanout": (round(1e6 * fanout_cpu / total_delivered, 2)
                                   if fanout_cpu is not None and fanout_cpu > 0 and total_delivered else None),
        "us_per_delivery_loop_thread": (round(1e6 * loop_cpu_all / total_delivered, 2)
                                        if loop_cpu_all is not None and total_delivered else None),
        "us_per_post_request_thread": (round(1e6 * (server_cpu_all - loop_cpu_all) / len(created), 1)
                                       if loop_cpu_all is not None and created else None),
        "client_cpu_pct": round(100 * _cpu(snaps, "clients", "start", "end") / pub_wall, 1),
        "writer_cpu_pct": round(100 * _cpu(snaps, "writer", "start", "end") / pub_wall, 1),
        "write_server_cpu_pct": (round(100 * _cpu(snaps, "write_server", "start", "end") / pub_wall, 1)
                                 if cfg.get("write_server") else None),
        "core_busy_pct": cores,
        "other_load_pct": round(100 * other / pub_wall, 1),
        "rss_mb": {"before": _mb(rss_before), "open": _mb(rss_open), "end": _mb(rss_end),
                   "per_process_before": [_mb(x) for x in rss["before"]]},
        "rss_growth_mb_per_1000": round((rss_open - rss_before) / 2**20 * 1000 / cfg["streams"], 2),
        "rss_growth_kb_per_stream": round((rss_open - rss_before) / 1024 / cfg["streams"], 2),
        "queries_per_event": round(queries_run / events, 2) if queries_run is not None and events else None,
        "queries_per_post_no_streams": (round(warm["queries"] / warm["created"], 2)
                                        if warm.get("queries") is not None and warm.get("created") else None),
        "query_kinds": dict(list(q["kinds"].items())[:15]),
        "gc_while_publishing": q["gc"],
        "gc_pauses_over_5ms": {"count": len(q["gc_pauses"]),
                               "max_ms": max((p[2] for p in q["gc_pauses"]), default=0.0),
                               "by_generation": {str(g): sum(1 for p in q["gc_pauses"] if p[1] == g)
                                                 for g in (0, 1, 2)}},
        "open_s": round(marks["open_end"] - marks["open_start"], 2),
        "drained": raw["drained"],
        "drain_s": round(marks["drained"] - marks["drain_start"], 2),
        "bytes_per_delivery": (round(sum(m["bytes"] for m in metas) / sum(m["frames"] for m in metas))
                               if sum(m["frames"] for m in metas) else None),
    }
    if redis_cpu is not None:
        figures["redis"] = {
            "commands_per_event": round((redis["after"]["commands"] - redis["before"]["commands"]) / events, 2)
            if events else None,
            "cpu_pct": round(100 * redis_cpu / pub_wall, 1),
            "net_out_bytes_per_event": round((redis["after"]["net_out"] - redis["before"]["net_out"]) / events)
            if events else None,
            "per_event_by_command": {
                name: round((calls - redis["before"]["by_command"].get(name, 0)) / events, 2)
                for name, calls in sorted(redis["after"].get("by_command", {}).items())
                if events and calls - redis["before"]["by_command"].get(name, 0) > 0
            },
            "note": "the whole Redis server: other clients of it count too",
        }
    behind = [{"doc": m["doc_index"], "last": m["last"], "final": final[m["doc_index"]], "state": m.get("state"),
               "slow": m["slow"], "connects": len(m["connects"]), "errors": m["errors"]}
              for m in metas if m["last"] < final[m["doc_index"]]]
    figures["streams_behind_at_end"] = {"count": len(behind), "sample": behind[:5]}
    if cfg["slow_readers"]:
        figures["slow"] = _slow(raw, marks, expected_slow, delivered_slow, lat, lat_at, metas)
    if "kill" in marks:
        figures["reconnect"] = _reconnect(marks, metas, rows, docs, after, lat, lat_at)

    # Series for the PNG.
    qs = np.concatenate([np.linspace(0, 0.9, 46), 1 - np.logspace(-1, -5, 60)])
    cdf = {"q": [round(float(x), 6) for x in qs],
           "ms": [round(float(x) * 1000, 3) for x in np.quantile(lat, qs)]} if lat.size else None
    end = marks["drained"]
    edges = np.arange(t_pub - 2, end + 1, 0.5)
    hist, _ = np.histogram(read.recv_all, bins=edges)
    timeline = {"t": [round(float(x - t_pub), 2) for x in edges[:-1]], "per_s": [int(x) * 2 for x in hist]}
    samples = raw["samples"]
    cpu_t, cpu_pct = [], []
    for prev, cur in zip(samples, samples[1:]):
        dt = cur["t"] - prev["t"]
        if dt > 0:
            cpu_t.append(round(cur["t"] - t_pub, 2))
            cpu_pct.append(round(100 * (cur["server"] - prev["server"]) / dt, 1))
    series = {"cdf": cdf, "timeline": timeline, "server_cpu": {"t": cpu_t, "pct": cpu_pct},
              "marks": {k: round(v - t_pub, 3) for k, v in marks.items() if isinstance(v, float)}}
    figures["server_counters"] = _counter_deltas(raw.get("server_metrics") or {})
    if raw.get("profile"):
        figures["profile"] = raw["profile"]
    return {"config": cfg, "figures": figures, "series": series,
            "marks": {k: v for k, v in marks.items()}, "slow_closes": raw.get("slow_closes", [])}


def _counter_deltas(metrics: dict) -> dict[str, float] | None:
    """The servers' own counters over the publishing window and drain (gap fills, replays, disconnects...).

    A restarted server's counters start again from zero: the reconnect run's figures are then a lower bound.
    """
    starts, ends = metrics.get("start") or [], metrics.get("end") or []
    if not ends or any(e is None for e in ends):
        return None
    out: dict[str, float] = {}
    for i, end in enumerate(ends):
        start = starts[i] if i < len(starts) and starts[i] else {}
        for name, value in end.items():
            if name.endswith("_created") or "_bucket" in name:
                continue
            delta = value - start.get(name, 0.0)
            if delta:
                short = name.removeprefix("docreview_")
                out[short] = round(out.get(short, 0.0) + delta, 3)
    return dict(sorted(out.items()))


def _mb(x: float) -> float:
    return round(x / 2**20, 1)


def _count_statuses(lists) -> dict[str, int]:
    out: dict[str, int] = {}
    for statuses in lists:
        for s in statuses:
            out[str(s)] = out.get(str(s), 0) + 1
    return out


def _slow(raw, marks, expected_slow, delivered_slow, lat, lat_at, metas) -> dict[str, Any]:
    stall = marks.get("stall")
    closed = marks.get("slow_closed")
    window_end = closed or marks["publish_end"]
    during = lat[(lat_at >= stall) & (lat_at < window_end)] if stall else np.zeros(0)
    before = lat[lat_at < stall] if stall else np.zeros(0)
    slow_metas = [m for m in metas if m["slow"]]
    return {
        "readers": len(slow_metas),
        "closed_by_server": len(raw.get("slow_closes", [])),
        "closed_after_s": round(closed - stall, 2) if closed and stall else None,
        "reconnects": sum(max(0, len(m["connects"]) - 1) for m in slow_metas),
        "expected": expected_slow, "delivered": delivered_slow, "lost": expected_slow - delivered_slow,
        "duplicated": sum(m["dups"] for m in slow_metas), "out_of_order": sum(m["ooo"] for m in slow_metas),
        "server_kernel_send_queue_max_kb": round(max((p.get("wmem_queued", 0) for p in raw.get("slow_kernel_queue", [])),
                                                     default=0) / 1024, 1),
        "server_kernel_sndbuf_max_kb": round(max((p.get("sndbuf", 0) for p in raw.get("slow_kernel_queue", [])),
                                                 default=0) / 1024, 1),
        "others_p99_ms_before_stall": percentile_ms(before, 99),
        "others_p99_ms_while_stalled": percentile_ms(during, 99),
    }


def _reconnect(marks, metas, rows, docs, after, lat, lat_at) -> dict[str, Any]:
    accept = marks["accept"]
    committed = marks["committed_at_accept"]
    victim_port = None
    times_reconnected, times_caught = [], []
    never = 0
    for meta, row in zip(metas, rows):
        if meta["slow"]:
            continue
        victim_port = victim_port or None
        reconnected = next((ok for _, ok in meta["connects"] if ok >= accept), None)
        d = meta["doc_index"]
        upto = committed[docs[d]] - after[d]  # events 1..upto of this window were committed at accept
        if reconnected is None:
            never += 1
            continue
        have = row[:upto] if upto > 0 else np.zeros(0)
        if have.size < upto or (have.size and (have <= 0).any()):
            never += 1
            continue
        caught = max(reconnected, float(have.max()) if have.size else 0.0)
        times_reconnected.append(reconnected - accept)
        times_caught.append(caught - accept)
    rec = np.array(times_reconnected)
    caught = np.array(times_caught)
    outage = (lat_at >= marks["kill"] - 0.5) & (lat_at <= accept + (caught.max() if caught.size else 0) + 0.5)
    return {
        "down_s": round(accept - marks["kill"], 3),
        "streams": len(times_caught) + never,
        "not_caught_up": never,
        "reconnected_s": percentiles(rec, scale=1.0, digits=3),
        "caught_up_s": percentiles(caught, scale=1.0, digits=3),
        "latency_ms_outside_outage": percentiles(lat[~outage]),
    }


# -- the document and its targets ---------------------------------------------------


def _machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release(), "loadavg": os.getloadavg()}


def _code_version() -> dict[str, Any]:
    """The commit and whether the working tree differs from it (read-only git)."""
    import hashlib
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", "realtime", "docreview", "reviews"], cwd=root,
                              capture_output=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": head, "server_code_modified": bool(diff),
            "server_diff_sha1": hashlib.sha1(diff).hexdigest()[:12] if diff else None}


def phase_of(config: dict) -> str:
    """Which row of the targets a run's configuration speaks to."""
    if config.get("server") == "floor":
        return "floor-batched" if config.get("batch_ms") else "floor-unbatched"
    if config.get("reconnect"):
        return "reconnect"
    if config.get("slow_readers"):
        return "slow"
    unbatched = str((config.get("server_env") or {}).get("SSE_COALESCE_MS", "")).strip() in ("0", "0.0")
    if config.get("write_server"):
        return "fanout-unbatched" if unbatched else "fanout"
    if config.get("workers", 1) > 1:
        return "redis2"
    if unbatched:
        return "unbatched"
    return "steady"


def _runs_by_phase(runs: list[dict]) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for run in runs:
        if "figures" not in run or run["config"].get("server") == "floor":  # the floor is context, not a target
            continue
        out.setdefault(run["config"]["server"], {}).setdefault(phase_of(run["config"]), run)  # the first of each
    return out


def targets(runs: list[dict]) -> list[dict[str, Any]]:
    """The issue's targets against what was measured, per server."""
    rows = []
    for server, phases in _runs_by_phase(runs).items():
        steady = phases.get("steady")
        if steady:
            f = steady["figures"]
            p99 = f["latency_ms"]["p99"]
            c = steady["config"]
            rows.append({"server": server, "target": f"{c['streams']} streams x {c['rate']:g} events/s on {c['docs']} "
                                                       "document(s), 1 process: p99 < 100 ms, 0 lost/dup/out of order",
                         "measured": f"p99 {p99} ms, lost {f['lost']}, dup {f['duplicated']}, "
                                     f"ooo {f['out_of_order']}",
                         "pass": p99 is not None and p99 < TARGET_P99_MS and f["lost"] == 0
                         and f["duplicated"] == 0 and f["out_of_order"] == 0})
            # The clean figure is a --write-server run (the stream server does the fan-out alone); without
            # one, the steady run's total CPU per delivery, which includes the write path.
            for name, fallback, limit, label in (
                    ("fanout-unbatched", "unbatched", TARGET_US_UNBATCHED, "unbatched (SSE_COALESCE_MS=0): <= 15 us"),
                    ("fanout", "steady", TARGET_US_BATCHED, "with the server's batching: <= 5 us")):
                run = phases.get(name) or phases.get(fallback)
                if not run:
                    continue
                g = run["figures"]
                clean = name in phases
                us = g["us_per_delivery"]
                measured = (f"{us} us, fan-out alone (writes on another process), at {g['deliveries_per_s']} "
                            f"deliveries/s" if clean else
                            f"{us} us with the write path in the same process (~{g['us_per_delivery_fanout']} us "
                            f"without it{thread_split(g)}), at {g['deliveries_per_s']} deliveries/s")
                rows.append({"server": server, "target": f"server CPU per delivery, {label}", "measured": measured,
                             "pass": us is not None and us <= limit})
            growth = f["rss_growth_mb_per_1000"]
            rows.append({"server": server, "target": "RSS growth for 1000 open streams <= 10 MB",
                         "measured": f"{growth} MB", "pass": growth <= TARGET_RSS_MB_PER_1000})
        rec = phases.get("reconnect")
        if rec and "reconnect" in rec["figures"]:
            r = rec["figures"]["reconnect"]
            f = rec["figures"]
            rows.append({"server": server, "target": "reconnect after SIGKILL + restart: p99 < 2 s to caught-up, "
                                                       "nothing lost",
                         "measured": f"p99 {r['caught_up_s']['p99']} s (max {r['caught_up_s']['max']}), "
                                     f"lost {f['lost']}, not caught up {r['not_caught_up']}",
                         "pass": r["caught_up_s"]["p99"] is not None and r["caught_up_s"]["p99"] < TARGET_RECONNECT_P99_S
                         and f["lost"] == 0 and r["not_caught_up"] == 0})
        two = phases.get("redis2")
        if two:
            f = two["figures"]
            versus = ""
            if steady:
                s = steady["figures"]
                versus = (f" vs 1 process: {s['deliveries_per_s']}/s, p99 {s['latency_ms']['p99']} ms")
            rows.append({"server": server, "target": "2 processes on Redis: every stream gets every event",
                         "measured": f"lost {f['lost']}, dup {f['duplicated']}; {f['deliveries_per_s']} "
                                     f"deliveries/s, p99 {f['latency_ms']['p99']} ms{versus}",
                         "pass": f["lost"] == 0 and f["duplicated"] == 0 and f["out_of_order"] == 0})
        slow = phases.get("slow")
        if slow and "slow" in slow["figures"]:
            sl = slow["figures"]["slow"]
            base = steady["figures"]["latency_ms"]["p99"] if steady else None
            during = sl["others_p99_ms_while_stalled"]
            unchanged = during is not None and base is not None and during <= base * 1.2 + 5
            rows.append({"server": server, "target": "a stream that stops reading: others' p99 unchanged, closed "
                                                       "past 1 MB, resumes with nothing lost",
                         "measured": f"others p99 {during} ms while stalled (steady run {base} ms); closed by "
                                     f"server: {sl['closed_by_server']} after {sl['closed_after_s']} s; slow "
                                     f"stream lost {sl['lost']}, others lost {slow['figures']['lost']}",
                         "pass": unchanged and sl["closed_by_server"] >= sl["readers"] and sl["lost"] == 0
                         and slow["figures"]["lost"] == 0})
    return rows


def floor_ratios(runs: list[dict]) -> list[dict[str, Any]]:
    """Each real run's CPU per delivery as a multiple of the floor's of the same invocation.

    A run with the server's batching off (``SSE_COALESCE_MS=0``) is set against the unbatched floor, any
    other against the batched one.  Empty when the invocation had no floor run.
    """
    floors: dict[str, dict] = {}
    for run in runs:
        if "figures" in run and run["config"].get("server") == "floor":
            floors.setdefault(phase_of(run["config"]), run)
    rows = []
    for run in runs:
        if "figures" not in run or run["config"].get("server") == "floor":
            continue
        unbatched = phase_of(run["config"]) in ("unbatched", "fanout-unbatched")
        floor = floors.get("floor-unbatched" if unbatched else "floor-batched")
        us = run["figures"]["us_per_delivery"]
        base = floor["figures"]["us_per_delivery"] if floor else None
        if not (us and base):
            continue
        fanout = run["figures"].get("us_per_delivery_fanout")
        loop = run["figures"].get("us_per_delivery_loop_thread")
        rows.append({"run": run["label"], "floor": floor["label"], "us_per_delivery": us,
                     "floor_us_per_delivery": base, "ratio": round(us / base, 2),
                     "fanout_ratio": round(fanout / base, 2) if fanout else None,
                     "loop_thread_ratio": round(loop / base, 2) if loop else None})
    return rows


def document(runs: list[dict], *, total_s: float) -> dict[str, Any]:
    return {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": _machine(), "code": _code_version(),
            "wall_s": round(total_s, 1), "runs": runs, "targets": targets(runs), "floor": floor_ratios(runs)}


# -- text ---------------------------------------------------------------------------


def one_line(run: dict) -> str:
    f = run["figures"]
    lat = f["latency_ms"]
    text = (f"  p50/p95/p99/max {lat['p50']}/{lat['p95']}/{lat['p99']}/{lat['max']} ms; delivered "
            f"{f['delivered']}/{f['expected']} (lost {f['lost']}, dup {f['duplicated']}, ooo {f['out_of_order']}); "
            f"server {f['server_cpu_pct']}% CPU, {f['us_per_delivery']} us/delivery{thread_split(f)}; "
            f"client {f['client_cpu_pct']}%")
    counters = f.get("server_counters") or {}
    if counters.get("publish_failures_total") or counters.get("gap_fills_total"):
        text += (f"; server: {int(counters.get('publish_failures_total', 0))} failed publishes, "
                 f"{int(counters.get('gap_fills_total', 0))} gap fills")
    if "reconnect" in f:
        c = f["reconnect"]["caught_up_s"]
        text += f"; caught up p50/p99/max {c['p50']}/{c['p99']}/{c['max']} s"
    if "slow" in f:
        s = f["slow"]
        text += f"; slow reader closed {s['closed_by_server']}x after {s['closed_after_s']} s, lost {s['lost']}"
    return text


def summary(doc: dict, base: Path) -> str:
    lines = ["", f"doc-review bench, {doc['machine']['cores']} cores ({doc['machine']['cpu']}), "
                 f"{doc['wall_s']:.0f}s"]
    header = (f"{'run':24} {'p50':>6} {'p95':>6} {'p99':>7} {'max':>7} {'lost':>6} {'dup':>4} {'ooo':>4} "
              f"{'cpu%':>5} {'us/dl':>6} {'dl/s':>7} {'MB/1k':>6} {'POSTp99':>7} {'q/ev':>5} {'cli%':>5} "
              f"{'oth%':>5}")
    lines += [header, "-" * len(header)]
    for run in doc["runs"]:
        if "figures" not in run:
            lines.append(f"{run['label']:24} {run.get('skipped') or run.get('failed')}")
            continue
        f = run["figures"]
        lat = f["latency_ms"]
        lines.append(
            f"{run['label']:24} {fmt(lat['p50']):>6} {fmt(lat['p95']):>6} {fmt(lat['p99']):>7} {fmt(lat['max']):>7} "
            f"{f['lost']:>6} {f['duplicated']:>4} {f['out_of_order']:>4} {fmt(f['server_cpu_pct']):>5} "
            f"{fmt(f['us_per_delivery']):>6} {fmt(f['deliveries_per_s'], 0):>7} {fmt(f['rss_growth_mb_per_1000']):>6} "
            f"{fmt(f['post_latency_ms']['p99']):>7} {fmt(f['queries_per_event']):>5} {fmt(f['client_cpu_pct']):>5} "
            f"{fmt(f['other_load_pct']):>5}")
        if "reconnect" in f:
            r = f["reconnect"]
            c = r["caught_up_s"]
            lines.append(f"{'':24} reconnect: down {r['down_s']} s; caught up p50/p99/max "
                         f"{c['p50']}/{c['p99']}/{c['max']} s; not caught up {r['not_caught_up']}")
        if "slow" in f:
            s = f["slow"]
            lines.append(f"{'':24} slow reader: closed {s['closed_by_server']}/{s['readers']} after "
                         f"{s['closed_after_s']} s, lost {s['lost']}; others p99 while stalled "
                         f"{s['others_p99_ms_while_stalled']} ms")
    lines.append("latency in ms; cpu% = server CPU while publishing (100 = one core); us/dl = server CPU per "
                 "delivery; MB/1k = RSS growth per 1000 streams; q/ev = SQL statements per event; cli% = load "
                 "client; oth% = CPU used by other programs on the machine")
    ratios = floor_ratios(doc["runs"])
    if ratios:
        lines.append("")
        lines.append("against the floor (bench/floor.py: uvloop, no Django, the same streams x events/s):")
        for row in ratios:
            fanout = (f"; fan-out alone {row['fanout_ratio']}x" if row["fanout_ratio"] else "")
            if row.get("loop_thread_ratio"):
                fanout += f"; event-loop thread alone {row['loop_thread_ratio']}x"
            lines.append(f"  {row['run']:24} {fmt(row['us_per_delivery'], 2):>6} us/dl = {row['ratio']}x "
                         f"{row['floor']} ({fmt(row['floor_us_per_delivery'], 2)} us){fanout}")
    if doc["targets"]:
        lines.append("")
        lines.append("targets:")
        for row in doc["targets"]:
            mark = "PASS" if row["pass"] else "FAIL"
            lines.append(f"  [{mark}] {row['server']}: {row['target']} -- {row['measured']}")
    lines.append("")
    lines.append(f"report: {base.with_suffix('.json')}")
    lines.append(f"plot:   {base.with_suffix('.png')}")
    return "\n".join(lines)


def fmt(x, digits: int = 1) -> str:
    """A figure for a table: "-" when missing."""
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}"
