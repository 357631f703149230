"""The pieces of a bench run: its database, its server processes, what they measure.

``bench/run.py`` puts them together; see its docstring and docs/performance.md.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from procs import ROOT, CpuMeter, Processes, core_busy, free_port, main_thread_cpu_seconds, port_accepts, rss_bytes

BENCH = ROOT / "bench"
PY = sys.executable
ALL_CORES = sorted(os.sched_getaffinity(0))  # before the bench pins itself


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(redis_url(), socket_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def cpu_layout(workers: int, pin: bool) -> tuple[list[list[int] | None], list[int] | None, str]:
    """Cores for each server process and for the load generators."""
    cores = ALL_CORES
    if not pin or len(cores) < 2 or not shutil.which("taskset"):
        return [None] * workers, None, f"unpinned ({len(cores)} cores)"
    if len(cores) >= workers + 1:
        server = [[cores[i]] for i in range(workers)]
        client = cores[workers:]
    else:
        server = [cores[:-1]] * workers
        client = cores[-1:]
    text = "; ".join(f"server {i}: cpu {','.join(map(str, c))}" for i, c in enumerate(server))
    return server, client, f"{text}; load client + writer: cpu {','.join(map(str, client))}"


class Database:
    """A fresh database for one run, removed afterwards."""

    def __init__(self, workdir: Path) -> None:
        self.url = os.environ.get("DATABASE_URL", "")
        self.created = ""
        if self.url:
            import psycopg

            parts = urllib.parse.urlsplit(self.url)
            self.created = f"docreview_bench_{os.getpid()}_{int(time.time())}"
            self.admin = parts._replace(path="/postgres").geturl()
            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.created}"')
            self.env = {"DATABASE_URL": parts._replace(path="/" + self.created).geturl()}
            self.kind = "postgresql"
        else:
            self.env = {"SQLITE_PATH": str(workdir / "bench.sqlite3")}
            self.kind = "sqlite"

    def last_ids(self, paths: list[str]) -> dict[str, int]:
        """Each document's last event id, read from the table (not through the server,
        which may be the thing that is overloaded)."""
        query = "SELECT key, last_id FROM realtime_stream WHERE key = ANY(%s)"
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.env["SQLITE_PATH"], timeout=30) as conn:
                marks = ",".join("?" * len(paths))
                rows = conn.execute(f"SELECT key, last_id FROM realtime_stream WHERE key IN ({marks})",
                                    paths).fetchall()
        else:
            import psycopg

            with psycopg.connect(self.env["DATABASE_URL"]) as conn:
                rows = conn.execute(query, (paths,)).fetchall()
        found = dict(rows)
        return {path: int(found.get(path, 0)) for path in paths}

    def drop(self) -> None:
        if self.created:
            import psycopg

            try:
                with psycopg.connect(self.admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.created}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001
                print(f"bench: could not drop database {self.created}: {exc}", file=sys.stderr)


class Server:
    """One server process (daphne or uvicorn), which can be SIGKILLed and restarted."""

    def __init__(self, procs: Processes, cfg: Any, index: int, env: dict[str, str], cpus: list[int] | None,
                 workdir: Path) -> None:
        self.procs, self.cfg, self.index, self.cpus = procs, cfg, index, cpus
        self.port = free_port()
        self.log_path = workdir / f"server-{index}.log"
        self.stats_path = workdir / f"server-{index}-stats.json"
        self.env = dict(env, BENCH_STATS_PATH=str(self.stats_path))
        self.proc: subprocess.Popen | None = None
        self.pids: list[int] = []
        self.stats: dict[int, dict] = {}  # last stats snapshot of every pid this server had

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        app = "docreview.asgi:application"
        if self.cfg.server == "daphne":
            bind = (["-e", f"tcp:port={self.port}:interface=127.0.0.1:backlog={self.cfg.backlog}"]
                    if self.cfg.backlog else ["-b", "127.0.0.1", "-p", str(self.port)])
            args = ["daphne", *bind, "-v", "0", app]
        else:
            args = ["uvicorn", app, "--host", "127.0.0.1", "--port", str(self.port), "--loop", "uvloop",
                    "--http", "httptools", "--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown", "5"]
            if self.cfg.backlog:
                args += ["--backlog", str(self.cfg.backlog)]
        if self.cfg.plain_server:
            return [PY, "-m", *args]
        return [PY, str(BENCH / "serve.py"), *args]

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = self.procs.start(self.command(), cpus=self.cpus, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)
        self.pids.append(self.proc.pid)

    def wait_accepting(self, timeout: float) -> float:
        """Poll the port every 5 ms; the moment it first accepts a connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.index} exited ({self.proc.returncode}):\n{self.log_tail()}")
            if port_accepts(self.port):
                return time.time()
            time.sleep(0.005)
        raise TimeoutError(f"server {self.index} not accepting after {timeout}s:\n{self.log_tail()}")

    def wait_healthy(self, timeout: float) -> None:
        self.wait_accepting(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server {self.index} not healthy after {timeout}s:\n{self.log_tail()}")

    def read_stats(self) -> dict | None:
        try:
            stats = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return None
        self.stats[stats["pid"]] = stats
        return stats

    def queries(self) -> int | None:
        """Statements run by every process this server has had (restarts included)."""
        self.read_stats()
        if not self.stats:
            return None
        return sum(s["queries"] for s in self.stats.values())

    def metrics(self, token: str) -> dict[str, float] | None:
        """The server's own counters from ``/metrics`` (``docreview_*`` samples, summed over labels but
        ``reason``), or None if it does not answer in time."""
        try:
            response = httpx.get(self.url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        found: dict[str, float] = {}
        for line in response.text.splitlines():
            if not line.startswith("docreview_") or line.startswith("docreview_delivery_latency_seconds_bucket"):
                continue
            name, _, value = line.rpartition(" ")
            if "{" in name and "reason=" not in name:
                name = name.split("{", 1)[0]
            try:
                found[name] = found.get(name, 0.0) + float(value)
            except ValueError:
                continue
        return found

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def rss(self) -> int:
        if self.proc is None:
            return 0
        return rss_bytes(self.proc.pid) or 0

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


class Sampler(threading.Thread):
    """Every 250 ms: CPU of the servers (and of their event-loop threads alone),
    the clients, the writer; every core's load."""

    def __init__(self, servers: list[Server], others: dict[str, list[int]]) -> None:
        super().__init__(daemon=True)
        self.servers = servers
        self.others = others
        self.server_cpu = CpuMeter()
        self.loop_cpu = CpuMeter(main_thread_cpu_seconds)
        self.other_cpu = {name: CpuMeter() for name in others}
        self.samples: list[dict] = []
        self.stop_event = threading.Event()

    def snapshot(self) -> dict:
        pids = [pid for s in self.servers for pid in s.pids]
        return {
            "t": time.time(),
            "server": self.server_cpu.read(pids),
            "server_loop": self.loop_cpu.read(pids),
            "server_rss": sum(s.rss() for s in self.servers),
            **{name: self.other_cpu[name].read(p) for name, p in self.others.items()},
            "cores": core_busy(),
        }

    def run(self) -> None:
        while not self.stop_event.wait(0.25):
            self.samples.append(self.snapshot())


def redis_info() -> dict[str, float] | None:
    try:
        import redis

        client = redis.Redis.from_url(redis_url(), socket_timeout=2)
        info = client.info()
        stats = client.info("commandstats")
    except Exception:  # noqa: BLE001
        return None
    return {"commands": info.get("total_commands_processed", 0),
            "by_command": {name.removeprefix("cmdstat_"): v.get("calls", 0) for name, v in stats.items()},
            "cpu": float(info.get("used_cpu_user", 0)) + float(info.get("used_cpu_sys", 0)),
            "net_in": info.get("total_net_input_bytes", 0), "net_out": info.get("total_net_output_bytes", 0)}


def redis_cleanup(prefix: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(redis_url(), socket_timeout=5)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
    except Exception as exc:  # noqa: BLE001
        print(f"bench: could not clean Redis keys {prefix}*: {exc}", file=sys.stderr)


def kernel_queue(server_port: int, client_port: int) -> dict[str, int] | None:
    """Bytes the kernel holds for the server's side of one connection (``ss``):
    Send-Q (unacknowledged) and wmem_queued (the whole send queue)."""
    if not shutil.which("ss"):
        return None
    out = subprocess.run(["ss", "-tmnH", "state", "established",
                          f"( sport = :{server_port} and dport = :{client_port} )"],
                         capture_output=True, text=True, timeout=5, check=False).stdout.split()
    found: dict[str, int] = {}
    if len(out) >= 2 and out[1].isdigit():
        found["send_q"] = int(out[1])
    for token in out:
        if token.startswith("skmem:("):
            for part in token[7:-1].split(","):
                name = "".join(ch for ch in part if ch.isalpha())
                value = part[len(name):]
                if name == "w" and value.isdigit():
                    found["wmem_queued"] = int(value)
                if name == "tb" and value.isdigit():
                    found["sndbuf"] = int(value)
    return found or None


def profile_phase(servers: list[Server], cfg: Any, phase: str) -> None:
    """Tell the servers' sampling profilers which phase this is ("" stops them)."""
    if not cfg.profile:
        return
    for server in servers:
        flag = Path(str(server.stats_path) + ".profile-on")
        if phase:
            flag.write_text(phase)
        else:
            flag.unlink(missing_ok=True)


def gc_totals(servers: list[Server]) -> dict[str, list[float]]:
    """Collections and pause seconds so far, by generation, over every server process."""
    for server in servers:
        server.read_stats()
    return merge_gc(servers)


def gc_delta(before: dict, after: dict) -> dict[str, dict[str, float]]:
    out = {}
    for gen, (count, total, worst) in after.items():
        c0, t0, _ = before.get(gen, [0, 0.0, 0.0])
        out[gen] = {"count": count - c0, "total_ms": round((total - t0) * 1000, 1),
                    "max_ms_whole_life": round(worst * 1000, 1)}
    return out


def sum_queries(servers: list[Server]) -> int | None:
    values = [s.queries() for s in servers]
    return None if any(v is None for v in values) else sum(values)


def merge_kinds(servers: list[Server]) -> dict[str, int]:
    out: dict[str, int] = {}
    for server in servers:
        for stats in server.stats.values():
            for kind, n in stats.get("kinds", {}).items():
                out[kind] = out.get(kind, 0) + n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def merge_gc(servers: list[Server]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for server in servers:
        for stats in server.stats.values():
            for gen, (count, total, worst) in stats.get("gc", {}).items():
                have = out.setdefault(gen, [0, 0.0, 0.0])
                have[0] += count
                have[1] += total
                have[2] = max(have[2], worst)
    return out


def scan_log(server: Server, offsets: dict[int, int], needle: str, user_prefix: str) -> list[dict]:
    """New log lines of ``server`` saying a ``user_prefix`` stream was closed with ``needle``."""
    found = []
    try:
        with open(server.log_path, "rb") as fh:
            fh.seek(offsets[server.index])
            data = fh.read()
    except OSError:
        return found
    end = data.rfind(b"\n") + 1
    offsets[server.index] += end
    for line in data[:end].decode(errors="replace").splitlines():
        if needle in line and f"user={user_prefix}" in line:
            found.append({"t": time.time(), "line": line[-200:]})
    return found
