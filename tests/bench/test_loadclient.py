"""The bench's load client parses what the servers send, however TCP splits it."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import loadclient  # noqa: E402


def chunk(body: bytes) -> bytes:
    """One HTTP/1.1 chunk, as daphne and uvicorn frame each ASGI body message."""
    return b"%x\r\n%s\r\n" % (len(body), body)


def frame(seq: int, sent: float) -> bytes:
    data = b'{"type":"comment.created","data":{"body":"bench %d @T%.6f@ xxxx"},"id":%d}' % (seq, sent, seq)
    return b"id: %d\nevent: comment.created\ndata: %s\n\n" % (seq, data)


def wire(count: int, *, batch: int) -> bytes:
    """A response body: retry, pings, an ephemeral event, frames alone or several per chunk."""
    out = [chunk(b"retry: 1000\n\n"), chunk(b'event: user.presence\ndata: {"status":"online"}\n\n')]
    seq = 1
    while seq <= count:
        group = b"".join(frame(s, 1000.0 + s) for s in range(seq, min(count, seq + batch - 1) + 1))
        out.append(chunk(group))
        if seq % 7 == 0:
            out.append(chunk(b": ping\n\n"))
        seq += batch
    return b"".join(out)


def client_with_one_stream() -> tuple[loadclient.Client, loadclient.Stream]:
    client = loadclient.Client({"streams": [{"host": "127.0.0.1", "port": 1, "doc": "d.md", "doc_index": 0,
                                             "token": "t", "after": 0}], "docs": 1, "expected_events": 8})
    stream = client.streams[0]
    stream.state = loadclient.STREAMING
    return client, stream


def feed(client, stream, body: bytes, rng: random.Random) -> None:
    pos = 0
    while pos < len(body):
        size = rng.choice([1, 2, 3, 5, 17, 300, 4096, 65536])
        client.on_body(stream, body[pos:pos + size], 2000.0)
        pos += size


def test_every_id_is_counted_once_whatever_the_split():
    rng = random.Random(7)
    for batch in (1, 3, 10):
        body = wire(300, batch=batch)
        for _ in range(30):
            client, stream = client_with_one_stream()
            feed(client, stream, body, rng)
            received = [i for i, t in enumerate(stream.recv) if t]
            assert received == list(range(300)), f"batch={batch}"
            assert stream.dups == 0 and stream.ooo == 0 and stream.frames == 300
            assert client.sent[0][1] == 1001.0 and client.sent[0][300] == 1300.0


def test_duplicates_and_disorder_are_counted():
    client, stream = client_with_one_stream()
    body = chunk(frame(1, 1.0) + frame(2, 2.0)) + chunk(frame(2, 2.0)) + chunk(frame(4, 4.0) + frame(3, 3.0))
    client.on_body(stream, body, 10.0)
    assert stream.dups == 1
    assert stream.ooo == 1
    assert stream.max_seen == 4


def test_the_end_of_the_response_is_noticed():
    client, stream = client_with_one_stream()
    dropped = []
    client.drop = lambda st, **kw: dropped.append(st)
    client.on_body(stream, chunk(frame(1, 1.0)) + b"0\r\n\r\n", 10.0)
    assert dropped == [stream]
