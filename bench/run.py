#!/usr/bin/env python
"""``make bench``: how many event streams doc-review serves, how fast, on this machine.

One *run* starts everything itself on 127.0.0.1 and stops everything it
started: a fresh database (a new SQLite file, or a new database on the
PostgreSQL server of ``DATABASE_URL``), the server (daphne or uvicorn, K
processes; K > 1 share Redis from ``REDIS_URL`` under a prefix of their own),
load-client processes holding the streams, and a writer posting comments
through ``POST /api/comments/``.  Server and clients are pinned to different
cores with ``taskset`` when there are at least two.

    bench/run.py                          # the suite: steady, unbatched, slow reader, reconnect, 2 processes
    bench/run.py --phases steady          # one run of the default scenario
    bench/run.py --phases floor           # the raw floor: a trivial uvloop SSE server, unbatched and batched
    bench/run.py --phases floor,suite     # the floor, then the suite, each run set against the floor
    bench/run.py --server uvicorn --workers 2 --streams 2000 --docs 2 --rate 100 --duration 30
    bench/run.py --phases reconnect       # SIGKILL the server mid-run, restart it, time the catch-up

Each invocation writes ``bench/results/<stamp>-<label>.json`` (every figure)
and ``.png`` (latency CDF, deliveries/s, server CPU over time) and prints a
one-screen summary, where each run's server CPU per delivery is also set
against the floor's when the invocation ran the ``floor`` phase.  See
docs/performance.md for how to read them.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
from floorrun import run_floor  # noqa: E402
from plot import plot  # noqa: E402
from procs import ROOT, Child, CpuMeter, Processes, open_streams  # noqa: E402
from stack import (  # noqa: E402
    BENCH, PY, Database, Sampler, Server, cpu_layout, gc_delta, gc_totals, kernel_queue, merge_kinds, profile_phase,
    redis_available, redis_cleanup, redis_info, redis_url, scan_log, sum_queries,
)

RESULTS = BENCH / "results"
STREAMS_PER_READER = 4  # under SSE_MAX_CONNECTIONS_PER_USER (5), with room for a reconnect
# The floor first: every later run of the invocation is set against it.
PHASES = ("floor", "steady", "unbatched", "slow", "reconnect", "redis2")
SUITE = PHASES
# Phases that need less publishing time than --duration to give their figure
# (keeps the whole suite under 5 minutes); --full-length gives them all of it.
SHORT_PHASES = {"floor": 5.0, "unbatched": 10.0, "reconnect": 20.0}
FLOOR_BATCH_MS = 20.0  # the real server's window: SSE_COALESCE_MS's default


@dataclass
class Config:
    server: str = "daphne"
    workers: int = 1
    streams: int = 1000
    docs: int = 1
    rate: float = 100.0
    duration: float = 30.0
    warmup: float = 3.0
    writers: int = 0
    clients: int = 1
    body_bytes: int = 200
    reconnect: bool = False
    kill_at: float = 0.4
    slow_readers: int = 0
    slow_after: float = 2.0
    drain_timeout: float = 20.0
    connect_concurrency: int = 64
    layer: str = "auto"
    backlog: int = 1024
    plain_server: bool = False
    profile: bool = False
    write_server: bool = False
    pin: bool = True
    server_env: dict[str, str] = field(default_factory=dict)
    batch_ms: float = 0.0  # the floor server's window (the real server's is SSE_COALESCE_MS in server_env)
    label: str = ""

    def layer_is_redis(self) -> bool:
        return self.layer == "redis" or (self.layer == "auto" and (self.workers > 1 or self.write_server))


# -- environment -------------------------------------------------------------------


# -- one run ---------------------------------------------------------------------


def run_once(cfg: Config, procs: Processes, say) -> dict[str, Any]:
    """Everything about one scenario; returns the raw material for ``report``."""
    workdir = Path(tempfile.mkdtemp(prefix="docreview-bench-"))
    servers: list[Server] = []
    all_servers: list[Server] = []
    clients: list[Child] = []
    db: Database | None = None
    prefix = ""
    sampler: Sampler | None = None
    try:
        server_cpus, client_cpus, layout = cpu_layout(cfg.workers, cfg.pin)
        db = Database(workdir)
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH")}
        env.update({
            "SECRET_KEY": "bench-secret-key-not-for-production", "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1",
            "FAST_PASSWORD_HASHER": "1", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **db.env,
        })
        redis_before = None
        if cfg.layer_is_redis():
            prefix = f"bench{os.getpid()}x{int(time.time() * 1000) % 10**8}"
            env.update({"REDIS_URL": redis_url(), "CHANNEL_PREFIX": prefix})
        metrics_token = f"bench-{os.getpid()}-{time.time_ns()}"
        env["METRICS_TOKEN"] = metrics_token
        env.update(cfg.server_env)
        if cfg.profile:
            env["BENCH_PROFILE"] = "1"
        load_env = {**os.environ, "PYTHONUNBUFFERED": "1"}

        normal = cfg.streams - cfg.slow_readers
        writers = cfg.writers or max(20, math.ceil(cfg.rate / 5))
        t0 = time.monotonic()
        out = subprocess.run(
            [PY, str(BENCH / "fixtures.py"), "--docs", str(cfg.docs), "--readers",
             str(math.ceil(normal / STREAMS_PER_READER)), "--writers", str(writers), "--slow", str(cfg.slow_readers)],
            cwd=ROOT, env=env, capture_output=True, timeout=300, check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"fixtures failed:\n{out.stderr.decode(errors='replace')[-3000:]}")
        fixtures = json.loads(out.stdout)
        say(f"  database ({db.kind}) ready in {time.monotonic() - t0:.1f}s; {layout}")

        for i in range(cfg.workers):
            servers.append(Server(procs, cfg, i, env, server_cpus[i], workdir))
        # --write-server: the POSTs go to one more process, on the load
        # generators' core, so the stream servers' CPU is the fan-out alone.
        writes_to = [Server(procs, cfg, cfg.workers, env, client_cpus, workdir)] if cfg.write_server else servers
        all_servers.extend(servers + (writes_to if cfg.write_server else []))
        for server in all_servers:
            server.start()
        for server in all_servers:
            server.wait_healthy(90)
        doc_paths = [d["path"] for d in fixtures["docs"]]
        writer_tokens = [w["token"] for w in fixtures["writers"]]

        sampler = Sampler(servers, {})
        result: dict[str, Any] = {"config": {**cfg.__dict__, "writers": writers, "layout": layout,
                                              "database": db.kind, "layer": "redis" if prefix else "memory"},
                                  "marks": {}}
        marks = result["marks"]

        # Warm-up with no stream open: the write path alone.  Its first half
        # pays for imports and caches; the second half gives the steady cost.
        if cfg.warmup > 0:
            writer = start_publisher(procs, cfg, writes_to, writer_tokens, doc_paths, workdir, "warmup",
                                     cfg.warmup, client_cpus, load_env, time.time() + 0.2)
            half = time.time() + 0.2 + cfg.warmup / 2
            time.sleep(max(0.0, half - time.time()))
            pids = [s.proc.pid for s in writes_to]
            post_meter = CpuMeter()
            cpu0, q0 = post_meter.read(pids), sum_queries(all_servers)
            profile_phase(all_servers, cfg, "warmup (POSTs, no stream)")
            writer.wait("done", timeout=cfg.warmup + 60)
            writer.proc.wait(timeout=10)
            profile_phase(all_servers, cfg, "")
            cpu1, q1 = post_meter.read(pids), sum_queries(all_servers)
            posts = json.loads((workdir / "writer-warmup.json").read_text())["records"]
            ok = sum(1 for r in posts if r[6] == 201 and r[4] >= half)
            result["warmup"] = {"posts": len(posts), "created": ok, "cpu_s": cpu1 - cpu0,
                                "queries": (q1 - q0) if q0 is not None and q1 is not None else None,
                                "post_p99_ms": report.percentile_ms([r[5] - r[4] for r in posts], 99)}
        time.sleep(1.0)
        rss_before = [s.rss() for s in servers]
        after = db.last_ids(doc_paths)

        # Streams: stream j reads document j % D on server j % K; the slow ones come last.
        specs: list[list[dict]] = [[] for _ in range(cfg.clients)]
        readers = fixtures["readers"]
        per_doc_events = math.ceil(cfg.rate * cfg.duration / cfg.docs)
        for j in range(cfg.streams):
            slow = j >= normal
            user = fixtures["slow"][j - normal] if slow else readers[j // STREAMS_PER_READER]
            doc = j % cfg.docs
            server = servers[j % cfg.workers]
            specs[j % cfg.clients].append({"host": "127.0.0.1", "port": server.port, "doc": doc_paths[doc],
                                           "doc_index": doc, "token": user["token"], "slow": slow,
                                           "after": after[doc_paths[doc]], "user": user["username"]})
        for c, streams in enumerate(specs):
            spec_path = workdir / f"client-{c}.json"
            spec_path.write_text(json.dumps({"streams": streams, "docs": cfg.docs, "seed": c,
                                             "expected_events": per_doc_events + 64,
                                             "connect_concurrency": cfg.connect_concurrency}))
            clients.append(Child(procs, [PY, str(BENCH / "loadclient.py"), str(spec_path)], cpus=client_cpus,
                                 env=load_env, stderr_path=workdir / f"client-{c}.err"))
        sampler.others = {"clients": [c.proc.pid for c in clients], "writer": [], "bench": [os.getpid()],
                          "write_server": [s.proc.pid for s in writes_to] if cfg.write_server else []}
        sampler.other_cpu = {name: CpuMeter() for name in sampler.others}
        sampler.start()

        profile_phase(all_servers, cfg, "open")
        marks["open_start"], marks["open_end"] = open_streams(clients)
        profile_phase(all_servers, cfg, "")
        streaming = sum(c.ask("status", "status")["streaming"] for c in clients)
        say(f"  {streaming}/{cfg.streams} streams open in {marks['open_end'] - marks['open_start']:.1f}s")
        time.sleep(1.0)
        rss_open = [s.rss() for s in servers]

        # Publish.
        redis_before = redis_info() if prefix else None
        metrics_start = [s.metrics(metrics_token) for s in servers]
        q_start = sum_queries(all_servers)
        gc_start = gc_totals(servers)
        start_snapshot = sampler.snapshot()
        start_at = time.time() + 0.3
        profile_phase(all_servers, cfg, "publish")
        marks["publish_start"] = start_at
        writer = start_publisher(procs, cfg, writes_to, writer_tokens, doc_paths, workdir, "main", cfg.duration,
                                 client_cpus, load_env, start_at)
        sampler.others["writer"] = [writer.proc.pid]
        stalled = resumed = False
        killed = False
        slow_pattern = "reason=slow"
        log_offsets = {s.index: 0 for s in servers}
        slow_closes: list[dict] = []
        kernel_probes: list[dict] = []
        last_probe = 0.0
        while True:
            now = time.time()
            try:
                writer.wait("done", timeout=0.05)
                break
            except TimeoutError:
                pass
            if cfg.slow_readers and not stalled and now >= start_at + cfg.slow_after:
                for client in clients:
                    client.send(cmd="stall")
                marks["stall"] = time.time()
                stalled = True
            if stalled and not resumed and now - last_probe >= 2.0:
                last_probe = now
                for client in clients:
                    for server_port, client_port in client.ask("status", "status")["slow_ports"]:
                        queued = kernel_queue(server_port, client_port)
                        if queued:
                            kernel_probes.append({"t": now - start_at, **queued})
            if stalled and not resumed:
                for server in servers:
                    found = scan_log(server, log_offsets, slow_pattern, "bench-slow")
                    slow_closes.extend(found)
                if len(slow_closes) >= cfg.slow_readers:
                    marks["slow_closed"] = time.time()
                    for client in clients:
                        client.send(cmd="resume")
                    resumed = True
            if cfg.reconnect and not killed and now >= start_at + cfg.kill_at * cfg.duration:
                victim = servers[0]
                sampler.server_cpu.read(victim.pids)  # its last CPU reading before it dies
                victim.read_stats()
                marks["kill"] = time.time()
                victim.kill()
                victim.start()
                marks["accept"] = victim.wait_accepting(60)
                marks["committed_at_accept"] = db.last_ids(doc_paths)
                marks["healthy"] = time.time()
                killed = True
                say(f"  killed server 0, accepting again after {marks['accept'] - marks['kill']:.2f}s")
            if now > start_at + cfg.duration + 60:
                raise TimeoutError("writer did not finish")
        marks["publish_end"] = time.time()
        if cfg.profile:
            profile_phase(all_servers, cfg, "")
            time.sleep(0.3)  # one more stats snapshot with the profile
        q_end = sum_queries(all_servers)
        gc_end = gc_totals(servers)
        end_snapshot = sampler.snapshot()
        redis_after = redis_info() if prefix else None
        if cfg.slow_readers and not resumed:
            for client in clients:
                client.send(cmd="resume")
            marks["resume_unclosed"] = time.time()

        # Drain: until every stream holds every committed event, or progress stops.
        final = db.last_ids(doc_paths)
        marks["drain_start"] = time.time()
        last_frames, last_progress = -1, time.monotonic()
        drained = False
        patience = 10.0 if cfg.reconnect else 5.0  # a dropped SYN is retried after 1, 3, 7 s
        while time.monotonic() - last_progress < patience and time.time() - marks["drain_start"] < cfg.drain_timeout:
            statuses = [c.ask("status", "status") for c in clients]
            # Progress: frames read, or connections made (streams still reconnecting).
            frames = sum(s["frames"] + s["connects"] for s in statuses)
            if all(low >= final[doc_paths[int(d)]] for s in statuses for d, low in s["min_last"].items()):
                drained = True
                break
            if frames != last_frames:
                last_frames, last_progress = frames, time.monotonic()
            time.sleep(0.2)
        marks["drained"] = time.time()
        drained_snapshot = sampler.snapshot()
        metrics_end = [s.metrics(metrics_token) for s in servers]
        rss_end = [s.rss() for s in servers]
        for server in servers:
            slow_closes.extend(scan_log(server, log_offsets, slow_pattern, "bench-slow"))
        sampler.stop_event.set()

        outputs = []
        for c, client in enumerate(clients):
            path = str(workdir / f"client-{c}")
            client.ask("finish", "finished", timeout=60, out=path)
            outputs.append(path)
        posts = json.loads((workdir / "writer-main.json").read_text())
        for server in all_servers:
            server.read_stats()
        result.update({
            "fixtures": {"docs": doc_paths, "writers": writers, "readers": len(readers)},
            "after": after, "final": final, "drained": drained,
            "rss": {"before": rss_before, "open": rss_open, "end": rss_end},
            "queries": {"start": q_start, "end": q_end,
                        "kinds": merge_kinds(all_servers), "gc": gc_delta(gc_start, gc_end),
                        "gc_pauses": [p for server in servers for st in server.stats.values()
                                      for p in st.get("gc_long", [])
                                      if marks["publish_start"] <= p[0] <= marks["publish_end"]]},
            "snapshots": {"start": start_snapshot, "end": end_snapshot, "drained": drained_snapshot},
            "samples": sampler.samples,
            "redis": {"before": redis_before, "after": redis_after} if prefix else None,
            "slow_closes": slow_closes,
            "server_metrics": {"start": metrics_start, "end": metrics_end},
            "slow_kernel_queue": kernel_probes,
            "profile": [st["profile"] for server in all_servers for st in server.stats.values() if st.get("profile")],
            "posts": posts,
            "client_outputs": outputs,
        })
        t_stop = time.monotonic()
        for server in all_servers:
            server.stop()
        say(f"  drained in {marks['drained'] - marks['drain_start']:.1f}s"
            f"{'' if drained else ' (gave up: see lost)'}; servers stopped in {time.monotonic() - t_stop:.1f}s")
        return report.analyse(result)
    finally:
        if sampler is not None:
            sampler.stop_event.set()
        for client in clients:
            if client.proc.poll() is None:
                client.proc.kill()
        for server in all_servers:
            server.stop()
        if prefix:
            redis_cleanup(prefix)
        if db is not None:
            db.drop()
        if os.environ.get("BENCH_KEEP_WORKDIR") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"  kept {workdir}")


def start_publisher(procs: Processes, cfg: Config, servers: list[Server], tokens: list[str], docs: list[str],
                    workdir: Path, name: str, duration: float, cpus, env, start_at: float | None = None) -> Child:
    spec = {"targets": [s.url for s in servers], "writers": tokens, "docs": docs, "rate": cfg.rate,
            "duration": duration, "body_bytes": cfg.body_bytes, "start_at": start_at,
            "out": str(workdir / f"writer-{name}.json")}
    path = workdir / f"writer-{name}-spec.json"
    path.write_text(json.dumps(spec))
    return Child(procs, [PY, str(BENCH / "publisher.py"), str(path)], cpus=cpus, env=env,
                 stderr_path=workdir / f"writer-{name}.err")


# -- the command line ----------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[Config]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="daphne",
                   help="daphne, uvicorn, or both comma-separated (each gets every phase) [daphne]")
    p.add_argument("--phases", default="",
                   help=f"comma-separated among {','.join(PHASES)}, and suite ({','.join(SUITE)}); default: the "
                        "suite, unless --workers, --reconnect or --slow-readers choose a single run")
    p.add_argument("--full-length", action="store_true",
                   help=f"give every phase --duration (by default {', '.join(f'{k} {v:g}s' for k, v in SHORT_PHASES.items())})")
    p.add_argument("--workers", type=int, default=None, help="server processes; >1 uses Redis [1]")
    p.add_argument("--streams", type=int, default=1000, help="open event streams in all [1000]")
    p.add_argument("--docs", type=int, default=1, help="documents the streams and events are spread over [1]")
    p.add_argument("--rate", type=float, default=100.0, help="events per second in all [100]")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of publishing [30]")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of writes before the streams open [3]")
    p.add_argument("--writers", type=int, default=0, help="writer users [max(20, rate/5)]")
    p.add_argument("--clients", type=int, default=1, help="load-client processes [1]")
    p.add_argument("--body-bytes", type=int, default=200, help="comment body size [200]")
    p.add_argument("--reconnect", action="store_true", help="SIGKILL the server mid-run and restart it")
    p.add_argument("--kill-at", type=float, default=0.4, help="fraction of --duration at which to kill [0.4]")
    p.add_argument("--slow-readers", type=int, default=None,
                   help="streams (out of --streams) that stop reading 2s into the run [0; 1 in the slow phase]")
    p.add_argument("--drain-timeout", type=float, default=20.0, help="max seconds to wait for the streams after "
                                                                      "the last POST [20]")
    p.add_argument("--connect-concurrency", type=int, default=64, help="handshakes in flight while opening [64]")
    p.add_argument("--write-server", action="store_true",
                   help="send the POSTs to one more server process (on the load generators' core, Redis layer), so "
                        "the stream servers' CPU is the fan-out alone")
    p.add_argument("--layer", choices=("auto", "memory", "redis"), default="auto",
                   help="channel layer: auto = Redis when --workers > 1 [auto]")
    p.add_argument("--backlog", type=int, default=1024,
                   help="listen backlog, as `make run` and the README deploy it (0: the server's default, "
                        "50 for daphne)")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the server processes (repeatable)")
    p.add_argument("--plain-server", action="store_true",
                   help="run the bare server command (no query counter or GC timer: queries n/a)")
    p.add_argument("--profile", action="store_true",
                   help="sample the server's stacks while publishing (top functions in the JSON; costs a few %%)")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument("--out", default=str(RESULTS), help="directory for the JSON and PNG [bench/results]")
    p.add_argument("--label", default="", help="name of this invocation in file names")
    p.add_argument("--no-png", action="store_true")
    p.add_argument("--timeout", type=float, default=900.0, help="hard limit for the whole invocation, s [900]")
    args = p.parse_args(argv)

    extra = {}
    for item in args.server_env:
        name, _, value = item.partition("=")
        extra[name] = value
    base = Config(streams=args.streams, docs=args.docs, rate=args.rate, duration=args.duration,
                  warmup=args.warmup, writers=args.writers, clients=args.clients, body_bytes=args.body_bytes,
                  kill_at=args.kill_at, drain_timeout=args.drain_timeout,
                  connect_concurrency=args.connect_concurrency, layer=args.layer, backlog=args.backlog,
                  plain_server=args.plain_server, profile=args.profile, pin=not args.no_pin, server_env=extra,
                  write_server=args.write_server)
    single = args.workers is not None or args.reconnect or args.slow_readers is not None or args.write_server
    asked = [x for x in args.phases.split(",") if x]
    phases = ([name for x in asked for name in (SUITE if x == "suite" else (x,))]
              or (["single"] if single else list(SUITE)))
    for phase in phases:
        if phase not in PHASES + ("single",):
            p.error(f"unknown phase {phase!r}")
    configs = []
    if "floor" in phases:  # once, whatever the servers: it is the same floor for all of them
        floor = replace(base, server="floor", label="floor-unbatched")
        if not args.full_length:
            floor = replace(floor, duration=min(floor.duration, SHORT_PHASES["floor"]))
        configs += [floor, replace(floor, batch_ms=FLOOR_BATCH_MS, label="floor-batched")]
    for server in [s.strip() for s in args.server.split(",") if s.strip()]:
        if server not in ("daphne", "uvicorn"):
            p.error(f"unknown server {server!r}")
        for phase in phases:
            if phase == "floor":
                continue
            cfg = replace(base, server=server, workers=args.workers or 1, reconnect=args.reconnect,
                          slow_readers=args.slow_readers or 0, label=f"{server}-{phase}")
            if phase in SHORT_PHASES and not args.full_length:
                cfg = replace(cfg, duration=min(cfg.duration, SHORT_PHASES[phase]))
            if phase == "unbatched":
                cfg = replace(cfg, server_env={"SSE_COALESCE_MS": "0", **cfg.server_env})
            elif phase == "slow":
                cfg = replace(cfg, slow_readers=args.slow_readers or 1)
            elif phase == "reconnect":
                cfg = replace(cfg, reconnect=True)
            elif phase == "redis2":
                cfg = replace(cfg, workers=args.workers if (args.workers or 1) > 1 else 2)
            if phase == "single":
                cfg = replace(cfg, label=f"{server}-w{cfg.workers}" + ("-reconnect" if cfg.reconnect else "")
                              + ("-slow" if cfg.slow_readers else "") + ("-writeserver" if cfg.write_server else ""))
            configs.append(cfg)
    return args, configs


def announce(cfg: Config) -> str:
    """The line that opens a run's output."""
    if cfg.server == "floor":
        return (f"== {cfg.label}: the floor server (uvloop, no Django), {cfg.streams} streams on one document, "
                f"{cfg.rate:g} events/s for {cfg.duration:g}s, "
                + (f"{cfg.batch_ms:g} ms windows" if cfg.batch_ms else "one write per event and stream"))
    return (f"== {cfg.label}: {cfg.server}, {cfg.workers} process(es), {cfg.streams} streams on {cfg.docs} "
            f"document(s), {cfg.rate:g} events/s for {cfg.duration:g}s"
            + (", SIGKILL + restart" if cfg.reconnect else "")
            + (f", {cfg.slow_readers} slow reader(s)" if cfg.slow_readers else ""))


def main(argv: list[str] | None = None) -> int:
    args, configs = parse_args(argv)
    procs = Processes()
    atexit.register(procs.kill_all)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    def on_alarm(signum, frame):
        raise TimeoutError(f"bench --timeout {args.timeout:g}s reached")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout))

    # Keep this process off the server's core too.
    _, client_cpus, _ = cpu_layout(1, not args.no_pin)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = args.label or ("floor" if all(c.server == "floor" for c in configs)
                           else "suite" if len(configs) > 1 else configs[0].label)
    base = out_dir / f"{stamp}-{label}"
    runs: list[dict] = []
    started = time.monotonic()

    def say(text: str) -> None:
        print(text, flush=True)

    code = 0
    try:
        for cfg in configs:
            if cfg.layer_is_redis() and not redis_available():
                print(f"== {cfg.label}: skipped, no Redis at {redis_url()}")
                runs.append({"label": cfg.label, "skipped": f"no Redis at {redis_url()}"})
                continue
            say(announce(cfg))
            t0 = time.monotonic()
            try:
                run = (run_floor if cfg.server == "floor" else run_once)(cfg, procs, say)
            except (SystemExit, KeyboardInterrupt):
                raise
            except Exception as exc:  # noqa: BLE001 - one failed run must not lose the others
                print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
                runs.append({"label": cfg.label, "failed": f"{type(exc).__name__}: {exc}"})
                code = 1
                continue
            run["label"] = cfg.label
            run["wall_s"] = round(time.monotonic() - t0, 1)
            runs.append(run)
            print(report.one_line(run), flush=True)
    finally:
        signal.alarm(0)
        procs.kill_all()
    document = report.document(runs, total_s=time.monotonic() - started)
    base.with_suffix(".json").write_text(json.dumps(document, indent=1))
    if not args.no_png:
        try:
            plot(document, base.with_suffix(".png"))
        except Exception as exc:  # noqa: BLE001
            print(f"bench: no PNG: {exc}", file=sys.stderr)
    print(report.summary(document, base))
    return code


if __name__ == "__main__":
    sys.exit(main())
