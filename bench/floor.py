"""The floor: a trivial SSE server on uvloop, with no Django, for the bench's ``floor`` phase.

It answers ``GET /api/events`` as doc-review does (HTTP/1.1, chunked, a
``retry:`` first) and publishes events itself on a schedule: each frame is
encoded once and written to every open stream, one ``transport.write`` per
event and stream, or with ``--batch-ms B`` one write per stream per window of
B ms (the window opens at the first pending frame, as the real server's
coalescing does).  Its CPU per delivery is what the machine's Python, uvloop
and loopback TCP cost before any of doc-review's own work: the real server's
figure reads as a multiple of it.

Started by ``bench/floorrun.py`` under ``procs.Child``; JSON lines on stdin and
stdout, as the load client:

    -> {"event": "listening", "port": P}                         once, at start
    {"cmd": "go", "start_at": T, "count": C, "rate": R, "body_bytes": N}
    -> {"event": "done", "t": ..., "writes": ..., "lag_ms_max": ...}   after the last write

It listens on 127.0.0.1 only and exits on stdin EOF or after ``--max-seconds``.
Unlike doc-review it holds no bound on what a stream leaves unread: the load
client reads everything, and ``--max-seconds`` bounds the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import uvloop

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
DOC_PATH = "bench/doc-000.md"


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk, as the real server frames each write."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def frame(seq: int, at: float, pad: str) -> bytes:
    """Event ``seq`` as the real server sends a new comment: same envelope, about the same size.

    ``at`` is the ``@T...@`` stamp the load client measures latency from.
    """
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
    comment = {"id": seq, "docPath": DOC_PATH, "author": {"id": 2 + seq % 20, "username": f"bench-w{seq % 20:04d}"},
               "body": f"bench {seq} @T{at:.6f}@ {pad}", "anchor": None, "parent": None, "resolved": False,
               "hidden": False, "createdAt": stamp, "updatedAt": stamp}
    envelope = {"type": "comment.created", "docPath": DOC_PATH, "data": comment, "id": seq, "at": stamp}
    data = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return f"id: {seq}\nevent: comment.created\ndata: {data}\n\n".encode()


class Stream(asyncio.Protocol):
    """One connection: the request head, then it only receives frames."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.transport: asyncio.Transport | None = None
        self.head: bytes | None = b""  # None once the response has started

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.head is None:
            return  # streaming: whatever the client sends is ignored
        self.head += data
        if b"\r\n\r\n" not in self.head:
            return
        request_line = self.head.split(b"\r\n", 1)[0]
        self.head = None
        if not request_line.startswith(b"GET /api/events?"):
            self.transport.write(NOT_FOUND)
            self.transport.close()
            return
        self.transport.write(HEAD + chunk(b"retry: 1000\n\n"))
        self.floor.streams.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.floor.streams.discard(self.transport)


class Floor:
    """The open streams and the publishing schedule."""

    def __init__(self, loop: asyncio.AbstractEventLoop, batch_ms: float) -> None:
        self.loop = loop
        self.batch = batch_ms / 1000.0
        self.streams: set[asyncio.Transport] = set()
        self.pending: list[bytes] = []
        self.window: asyncio.TimerHandle | None = None
        self.flushed: asyncio.Future | None = None
        self.writes = 0

    def write_all(self, data: bytes) -> None:
        for transport in self.streams:
            transport.write(data)
        self.writes += len(self.streams)

    def flush(self) -> None:
        self.window = None
        self.write_all(chunk(b"".join(self.pending)))
        self.pending.clear()
        if self.flushed is not None and not self.flushed.done():
            self.flushed.set_result(None)

    def publish(self, seq: int, due: float, pad: str) -> None:
        data = frame(seq, due, pad)
        if not self.batch:
            self.write_all(chunk(data))
            return
        self.pending.append(data)
        if self.window is None:
            self.window = self.loop.call_later(self.batch, self.flush)

    async def settle(self) -> None:
        """Return once the open window, if any, has been written."""
        if self.window is not None:
            self.flushed = self.loop.create_future()
            await self.flushed

    async def go(self, start_at: float, count: int, rate: float, body_bytes: int) -> None:
        """Events 1..count at ``rate``/s from ``start_at``, open-loop: a late event does not delay the next.

        Each is stamped with the time it was due, not the time it went out: when this process cannot keep
        up, the latency shows it, as a real server's does when POSTs wait for it.
        """
        pad = "x" * max(0, body_bytes - 40)
        lag = 0.0
        for seq in range(1, count + 1):
            due = start_at + (seq - 1) / rate
            # Back to the loop between events even when late, as a server's loop would be.
            await asyncio.sleep(max(0.0, due - time.time()))
            lag = max(lag, time.time() - due)
            self.publish(seq, due, pad)
        await self.settle()
        emit(event="done", t=time.time(), writes=self.writes, lag_ms_max=round(lag * 1000, 2))


class Control(asyncio.Protocol):
    """Commands on stdin, one JSON object a line; EOF ends the process."""

    def __init__(self, floor: Floor, stop: asyncio.Future) -> None:
        self.floor = floor
        self.stop = stop
        self.buf = b""
        self.tasks: set[asyncio.Task] = set()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if not line.strip():
                continue
            command = json.loads(line)
            if command.get("cmd") == "go":
                task = asyncio.ensure_future(self.floor.go(float(command["start_at"]), int(command["count"]),
                                                           float(command["rate"]),
                                                           int(command.get("body_bytes", 200))))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stop.done():
            self.stop.set_result(None)


def emit(**message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    floor = Floor(loop, args.batch_ms)
    stop = loop.create_future()
    server = await loop.create_server(lambda: Stream(floor), "127.0.0.1", args.port, backlog=args.backlog)
    await loop.connect_read_pipe(lambda: Control(floor, stop), sys.stdin)
    emit(event="listening", port=server.sockets[0].getsockname()[1])
    try:
        await asyncio.wait_for(stop, args.max_seconds)
    except asyncio.TimeoutError:
        print(f"floor: --max-seconds {args.max_seconds:g} reached", file=sys.stderr)
    server.close()
    for transport in list(floor.streams):
        transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="on 127.0.0.1 [0: any free port, sent back]")
    parser.add_argument("--batch-ms", type=float, default=0.0, help="coalescing window [0: one write per event]")
    parser.add_argument("--backlog", type=int, default=1024)
    parser.add_argument("--max-seconds", type=float, default=900.0, help="exit after this long, whatever happens")
    uvloop.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
