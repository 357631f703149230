"""Processes the bench starts, and what /proc says about them.

Every child is started from the main thread with ``PR_SET_PDEATHSIG`` so that
it dies with the bench even if the bench itself is killed, and is remembered so
that ``Processes.kill_all`` (run from ``finally`` and ``atexit``) ends it.  Only
those processes are ever signalled.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1

try:
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc: the finally/atexit clean-up still runs
    _libc = None


def _die_with_parent() -> None:
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], *, cpus: list[int] | None = None, env: dict[str, str] | None = None,
              **popen: Any) -> subprocess.Popen:
        if cpus and shutil.which("taskset"):
            cmd = ["taskset", "-c", ",".join(str(c) for c in cpus), *cmd]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, preexec_fn=_die_with_parent, **popen)
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.kill()
                except OSError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class Child:
    """A bench child that speaks JSON lines: commands on stdin, events on stdout."""

    def __init__(self, procs: Processes, cmd: list[str], *, cpus: list[int] | None, env: dict[str, str],
                 stderr_path: Path) -> None:
        self.stderr = open(stderr_path, "ab")
        self.proc = procs.start(cmd, cpus=cpus, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=self.stderr)
        self.stderr_path = stderr_path
        self.events: queue.Queue[dict] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass
        self.events.put({"event": "exit"})

    def send(self, **command: Any) -> None:
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, event: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {event!r} from {self.proc.args[-1]} within {timeout:.0f}s; "
                                   f"stderr: {self.tail()}")
            try:
                message = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if message.get("event") == event:
                return message
            if message.get("event") == "exit":
                raise RuntimeError(f"{self.proc.args[-1]} exited ({self.proc.wait()}); stderr: {self.tail()}")

    def ask(self, command: str, event: str, timeout: float = 10.0, **extra: Any) -> dict:
        self.send(cmd=command, **extra)
        return self.wait(event, timeout)

    def tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


# -- /proc ----------------------------------------------------------------------


def open_streams(clients: list[Child], timeout: float = 180) -> tuple[float, float]:
    """Have every load client open all its streams; when the opening began and ended."""
    start = time.time()
    for client in clients:
        client.send(cmd="open")
    for client in clients:
        client.wait("opened", timeout=timeout)
    return start, time.time()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of ``pid`` (threads included), or None once it is gone."""
    return _stat_cpu(f"/proc/{pid}/stat")


def main_thread_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of ``pid``'s main thread alone: in a server, its event loop."""
    return _stat_cpu(f"/proc/{pid}/task/{pid}/stat")


def _stat_cpu(path: str) -> float | None:
    try:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def core_busy() -> dict[int, tuple[float, float]]:
    """Per core: (busy seconds, total seconds) since boot, from /proc/stat."""
    out = {}
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                v = [int(x) for x in values[:8]]
                busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
                out[int(name[3:])] = (busy / CLK_TCK, (busy + v[3] + v[4]) / CLK_TCK)
    return out


class CpuMeter:
    """Cumulative CPU of a set of processes whose pids may change (a restarted server).

    A pid that disappears keeps its last reading, so a killed server's CPU still counts.
    """

    def __init__(self, reader: Callable[[int], float | None] = cpu_seconds) -> None:
        self.reader = reader
        self.last: dict[int, float] = {}
        self.lock = threading.Lock()

    def read(self, pids: list[int]) -> float:
        with self.lock:
            for pid in pids:
                value = self.reader(pid)
                if value is not None:
                    self.last[pid] = value
            return sum(self.last.values())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
