"""The floor server: its frames read in the load client as the real server's do, its batching writes once
per window, and a small floor run of the bench loses, duplicates and reorders nothing.

Counts only, never a timing: the machine running the suite may be busy.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import floor  # noqa: E402
import loadclient  # noqa: E402
import run  # noqa: E402
from floorrun import run_floor  # noqa: E402
from procs import Processes  # noqa: E402


class Recorder:
    """A transport that keeps what is written to it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


def publish(count: int, batch_ms: float) -> list[Recorder]:
    """Publish ``count`` events at once to two recorded streams; return once all is written."""
    streams = [Recorder(), Recorder()]

    async def main() -> None:
        server = floor.Floor(asyncio.get_running_loop(), batch_ms)
        server.streams.update(streams)
        for seq in range(1, count + 1):
            server.publish(seq, time.time(), "x" * 160)
        await server.settle()

    asyncio.run(main())
    return streams


def read(writes: list[bytes]) -> loadclient.Stream:
    client = loadclient.Client({"streams": [{"host": "127.0.0.1", "port": 1, "doc": floor.DOC_PATH, "doc_index": 0,
                                             "token": "t", "after": 0}], "docs": 1, "expected_events": 8})
    stream = client.streams[0]
    stream.state = loadclient.STREAMING
    for data in writes:
        client.on_body(stream, data, time.time())
    return stream


def test_unbatched_each_event_is_one_write_to_each_stream():
    for stream in publish(5, batch_ms=0):
        assert len(stream.writes) == 5
        got = read(stream.writes)
        assert got.frames == 5 and got.max_seen == 5 and got.dups == 0 and got.ooo == 0


def test_batched_the_events_of_one_window_are_one_write_to_each_stream():
    streams = publish(5, batch_ms=20)
    assert streams[0].writes == streams[1].writes  # encoded once, the same bytes to every stream
    for stream in streams:
        assert len(stream.writes) == 1
        got = read(stream.writes)
        assert got.frames == 5 and got.max_seen == 5 and got.dups == 0 and got.ooo == 0


def test_a_frame_is_about_as_large_as_the_real_servers():
    # The real bench reads ~593 bytes per delivery, chunk framing included.
    assert 520 <= len(floor.chunk(floor.frame(1234, time.time(), "x" * 160))) <= 620


def test_a_small_floor_run_loses_duplicates_and_reorders_nothing():
    _, configs = run.parse_args(["--phases", "floor", "--streams", "20", "--rate", "20", "--duration", "1.5",
                                 "--drain-timeout", "20"])
    assert [c.batch_ms for c in configs] == [0.0, run.FLOOR_BATCH_MS]
    procs = Processes()
    try:
        runs = [run_floor(cfg, procs, lambda text: None) for cfg in configs]
    finally:
        procs.kill_all()
    for result in runs:
        f = result["figures"]
        assert f["events"] == 30
        assert f["expected"] == 20 * 30
        assert f["lost"] == 0
        assert f["duplicated"] == 0
        assert f["out_of_order"] == 0
        assert f["no_timestamp"] == 0 and f["latency_ms"]["n"] == f["delivered"]
