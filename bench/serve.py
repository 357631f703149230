"""Run daphne's or uvicorn's own command line, plus two counters the bench needs.

    python bench/serve.py daphne  -b 127.0.0.1 -p 8001 docreview.asgi:application
    python bench/serve.py uvicorn docreview.asgi:application --host 127.0.0.1 --port 8001 ...

The server, its options and the ASGI application are exactly those of the plain
command.  Added, for the report only, and written every 100 ms to the JSON file
named by ``BENCH_STATS_PATH``:

- every SQL statement that goes through Django's cursor, counted by verb and
  table (an ``execute_wrapper`` on each connection: about a microsecond per
  statement).  The server has no query counter of its own, and none can be
  read from outside the process on SQLite;
- garbage-collection pauses by generation (``gc.callbacks``);
- with ``BENCH_PROFILE=1``, a sampling profile: every 5 ms, the stack of every
  thread that is not parked in a wait, counted per function (self and
  inclusive) under the phase name written in ``<BENCH_STATS_PATH>.profile-on``
  while that file exists (``bench/run.py --profile`` writes "open" while the
  streams open and "publish" while the comments are posted).  Costs a few %
  of CPU; off by default.

``bench/run.py --plain-server`` starts the bare command instead.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/, first on the path

STATS_PATH = os.environ.get("BENCH_STATS_PATH", "")
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
TABLE_RE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)

_lock = threading.Lock()
_queries = 0
_kinds: dict[str, int] = {}
_gc = {gen: [0, 0.0, 0.0] for gen in range(3)}  # count, total seconds, max seconds
_gc_started = 0.0
_gc_long: list[tuple[float, int, float]] = []  # pauses of 5 ms or more: (when, generation, ms)


def _count(execute, sql, params, many, context):
    global _queries
    verb = sql.lstrip()[:6].upper()
    match = TABLE_RE.search(sql)
    kind = f"{verb.strip()} {match.group(1) if match else ''}".strip()
    with _lock:
        _queries += 1
        _kinds[kind] = _kinds.get(kind, 0) + 1
    return execute(sql, params, many, context)


def _on_connection(sender, connection, **kwargs) -> None:
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def _on_gc(phase: str, info: dict) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        took = time.perf_counter() - _gc_started
        generation = info.get("generation", 0)
        stats = _gc[generation]
        stats[0] += 1
        stats[1] += took
        stats[2] = max(stats[2], took)
        if took >= 0.005 and len(_gc_long) < 5000:
            _gc_long.append((round(time.time(), 3), generation, round(took * 1000, 1)))


_writer_ident = 0


def _writer() -> None:
    global _writer_ident
    _writer_ident = threading.get_ident()
    tmp = STATS_PATH + ".tmp"
    while True:
        with _lock:
            snapshot = {"pid": os.getpid(), "t": time.time(), "queries": _queries, "kinds": dict(_kinds),
                        "gc": {str(g): list(v) for g, v in _gc.items()}, "gc_long": list(_gc_long)}
        if PROFILE:
            snapshot["profile"] = _profile_snapshot()
        with open(tmp, "w") as fh:
            json.dump(snapshot, fh)
        os.replace(tmp, STATS_PATH)
        time.sleep(0.1)


# Leaf frames of a thread that waits: a blocking call in C runs under them.
IDLE_LEAVES = {"wait", "get", "select", "poll", "doPoll", "run", "run_until_complete", "run_forever", "_worker",
               "sleep", "_bootstrap_inner", "accept"}
_phases: dict[str, dict] = {}  # phase name -> {"self": {...}, "incl": {...}, "samples": n}


def _where(code) -> str:
    path = code.co_filename
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{code.co_firstlineno}({code.co_name})"


def _profiler() -> None:
    flag = STATS_PATH + ".profile-on"
    me = threading.get_ident()
    phase = ""
    last_check = 0.0
    while True:
        now = time.monotonic()
        if now - last_check > 0.1:
            try:
                with open(flag) as fh:
                    phase = fh.read().strip() or "on"
            except OSError:
                phase = ""
            last_check = now
        if phase:
            counts = _phases.setdefault(phase, {"self": {}, "incl": {}, "samples": 0})
            own, incl = counts["self"], counts["incl"]
            for ident, frame in sys._current_frames().items():
                if ident == me or ident == _writer_ident:
                    continue
                if frame.f_code.co_name in IDLE_LEAVES:
                    continue  # parked in a wait (or inside the event loop's C code)
                leaf = _where(frame.f_code)
                own[leaf] = own.get(leaf, 0) + 1
                seen = set()
                while frame is not None:
                    name = _where(frame.f_code)
                    if name not in seen:
                        seen.add(name)
                        incl[name] = incl.get(name, 0) + 1
                    frame = frame.f_back
                counts["samples"] += 1
        time.sleep(0.005)


def _profile_snapshot() -> dict:
    return {
        phase: {"samples": c["samples"],
                "self": sorted(c["self"].items(), key=lambda kv: -kv[1])[:40],
                "inclusive": sorted(c["incl"].items(), key=lambda kv: -kv[1])[:80]}
        for phase, c in list(_phases.items())
    }


def main() -> None:
    server, args = sys.argv[1], sys.argv[2:]
    if STATS_PATH:
        from django.db.backends.signals import connection_created

        connection_created.connect(_on_connection, weak=False)
        gc.callbacks.append(_on_gc)
        threading.Thread(target=_writer, name="bench-stats", daemon=True).start()
        if PROFILE:
            threading.Thread(target=_profiler, name="bench-profiler", daemon=True).start()
    sys.argv = [server, *args]
    if server == "daphne":
        from daphne.cli import CommandLineInterface

        CommandLineInterface.entrypoint()
    elif server == "uvicorn":
        from uvicorn.main import main as uvicorn_main

        uvicorn_main()
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    main()
