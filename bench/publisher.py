"""The writer: ``POST /api/comments/`` at a steady rate through the real write path.

Started by ``bench/run.py`` with a JSON spec.  Open loop: POST ``i`` is due at
``start + i / rate`` whatever happened to the ones before it (a slow server
does not slow the offered load down), from writer ``i % W`` to document
``i % D`` and server ``i % K``, with at most ``max_in_flight`` requests
outstanding; once ``duration`` (plus a 2 s grace) has passed, whatever is left
is not sent but counted as unsent.  Each body carries ``@T<time.time()>@``, the
moment the request is written to the socket, from which every stream computes
its latency.

HTTP/1.1 over kept-alive connections, written by hand: the request is a few
bytes built from a template, and the response is read only as far as its
status and its length.  An HTTP client library costs several milliseconds of
CPU per request on a slow core, and the writer shares its core with the load
client, whose reading it would delay.

Writes the record of every POST to ``out`` and prints ``{"event": "done"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

HEAD = (
    "POST /api/comments/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: Token {token}\r\n"
    "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
)


class HTTPError(Exception):
    """A POST that got no complete response: its name goes into the record."""


class Target:
    """One server: a pool of idle kept-alive connections to it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.authority = parts.netloc
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, token: str, body: bytes) -> int:
        """Send one POST; its status code.  Raises HTTPError (named by what failed)."""
        head = HEAD.format(host=self.authority, token=token, length=len(body)).encode()
        conn = None
        while self.idle and conn is None:
            conn = self.idle.pop()
            if conn[0].at_eof() or conn[1].is_closing():  # closed by the server while idle
                conn[1].close()
                conn = None
        if conn is None:
            try:
                conn = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                raise HTTPError("ConnectError") from exc
        reader, writer = conn
        try:
            writer.write(head + body)
            status, keep = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            raise HTTPError("ReadError") from exc
        except ValueError as exc:
            writer.close()
            raise HTTPError("RemoteProtocolError") from exc
        except BaseException:  # cancelled (timed out): the connection is in an unknown state
            writer.close()
            raise
        if keep:
            self.idle.append(conn)
        else:
            writer.close()
        return status

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response off ``reader``: (status, whether the connection stays open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, chunked, keep = 0, False, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            keep = value != "close"
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep


async def publish(spec: dict) -> dict:
    targets = [Target(url) for url in spec["targets"]]
    writers = spec["writers"]
    docs = spec["docs"]
    rate = float(spec["rate"])
    count = int(round(rate * float(spec["duration"])))
    pad = "x" * max(0, int(spec.get("body_bytes", 200)) - 40)
    timeout = float(spec.get("timeout", 10.0))
    slots = asyncio.Semaphore(int(spec.get("max_in_flight", 256)))
    records: list[list] = [None] * count  # type: ignore[list-item]

    async def one(i: int, scheduled: float) -> None:
        doc = i % len(docs)
        target = i % len(targets)
        writer = writers[i % len(writers)]
        status = 0
        error = ""
        sent = time.time()
        body = json.dumps({"docPath": docs[doc], "body": f"bench {i} @T{sent:.6f}@ {pad}"}).encode()
        try:
            status = await asyncio.wait_for(targets[target].post(writer, body), timeout)
        except HTTPError as exc:
            error = str(exc)
        except asyncio.TimeoutError:
            error = "ReadTimeout"
        finally:
            slots.release()
        records[i] = [i, doc, target, scheduled, sent, time.time(), status, error]

    start = float(spec.get("start_at") or time.time())
    tasks = []
    loop = asyncio.get_running_loop()
    deadline = start + float(spec["duration"]) + float(spec.get("grace", 2.0))
    unsent = 0
    for i in range(count):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            # Bounded in time: a server that cannot keep up gets no POSTs
            # after the deadline; they are reported as unsent.
            await asyncio.wait_for(slots.acquire(), timeout=max(0.001, deadline - time.time()))
        except asyncio.TimeoutError:
            unsent = count - i
            break
        tasks.append(loop.create_task(one(i, due)))
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 5)
    for target in targets:
        target.close()
    return {"start": start, "rate": rate, "unsent": unsent, "records": [r for r in records if r is not None]}
def main() -> None:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    try:
        import uvloop

        result = uvloop.run(publish(spec))
    except ImportError:
        result = asyncio.run(publish(spec))
    with open(spec["out"], "w") as fh:
        json.dump(result, fh)
    sys.stdout.write(json.dumps({"event": "done", "posts": len(result["records"])}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
