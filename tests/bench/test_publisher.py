"""The bench's writer speaks HTTP/1.1 by hand: it must read every shape of
response a server sends, reuse kept-alive connections, and name what failed."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import publisher  # noqa: E402


class FakeServer:
    """Answers each POST by the rule its body's number picks; records what arrived."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.heads: list[str] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                length = int(re.search(r"content-length: (\d+)", head, re.I).group(1))
                body = json.loads(await reader.readexactly(length))
                self.heads.append(head)
                self.bodies.append(body)
                n = int(body["body"].split()[1])
                if n % 4 == 0:  # Content-Length
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
                elif n % 4 == 1:  # chunked, in two chunks
                    writer.write(b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n"
                                 b"3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n")
                elif n % 4 == 2:  # then closes the connection
                    writer.write(b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                    writer.close()
                    return
                else:  # hangs up without answering
                    writer.close()
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def run_publisher(count: int, rate: float = 200.0) -> tuple[dict, FakeServer]:
    fake = FakeServer()

    async def main() -> dict:
        server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await publisher.publish({
                "targets": [f"http://127.0.0.1:{port}"], "writers": ["tok-a", "tok-b"], "docs": ["a.md", "b.md"],
                "rate": rate, "duration": count / rate, "timeout": 5, "max_in_flight": 1,
            })

    return asyncio.run(main()), fake


def test_every_post_is_sent_once_with_its_token_and_document_and_its_answer_recorded():
    result, fake = run_publisher(12)
    records = sorted(result["records"])
    assert [r[0] for r in records] == list(range(12))
    assert result["unsent"] == 0
    for i, doc, _target, _due, sent, done, status, error in records:
        assert doc == i % 2 and done >= sent
        expected = {0: (201, ""), 1: (400, ""), 2: (429, ""), 3: (0, "ReadError")}[i % 4]
        assert (status, error) == expected, i
    # What reached the server: each POST once, carrying its send time for the streams' latency.
    assert sorted(int(b["body"].split()[1]) for b in fake.bodies) == list(range(12))
    for body in fake.bodies:
        i = int(body["body"].split()[1])
        assert body["docPath"] == ["a.md", "b.md"][i % 2]
        assert re.search(r"@T\d+\.\d{6}@", body["body"])
    assert all(f"Authorization: Token tok-{'ab'[int(b['body'].split()[1]) % 2]}" in h
               for h, b in zip(fake.heads, fake.bodies))


def test_a_kept_alive_connection_is_reused_and_one_closed_by_the_server_is_not():
    # POSTs 0 and 1 share a connection; 2 closes it (Connection: close), 3 is
    # hung up on: 4 connections for 8 POSTs, two per cycle of four.
    result, fake = run_publisher(8)
    assert fake.connections == 4
    assert sum(1 for r in result["records"] if r[6] == 201) == 2


def test_a_refused_connection_is_recorded_as_a_connect_error():
    async def main() -> dict:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await publisher.publish({
            "targets": [f"http://127.0.0.1:{port}"], "writers": ["t"], "docs": ["a.md"],
            "rate": 100.0, "duration": 0.03, "timeout": 5,
        })

    result = asyncio.run(main())
    assert [(r[6], r[7]) for r in result["records"]] == [(0, "ConnectError")] * 3
