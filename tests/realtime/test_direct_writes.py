"""The fan-out's fast path: the hub writes a live frame straight to the
connection while the stream is parked, and falls back to the stream's own
buffer whenever order or the bound needs it (``realtime.subscriber``,
``realtime.transport``)."""

from __future__ import annotations

import asyncio
import socket

from realtime.subscriber import Subscriber
from realtime.transport import GONE, Outbox, TwistedOutbox, chunk


class Wire(Outbox):
    """A connection that records what is written and reports ``unsent``."""

    __slots__ = ("written", "unsent", "aborted", "gone")

    def __init__(self, unsent: int = 0) -> None:
        self.written: list[bytes] = []
        self.unsent = unsent
        self.aborted = False
        self.gone = False

    @property
    def known(self) -> bool:
        return True

    def write(self, wire: bytes) -> int:
        self.written.append(wire)
        return self.unsent

    def abort(self) -> None:
        self.aborted = True

    def closed(self) -> bool:
        return self.gone


def direct(sub: Subscriber, wire: Wire) -> Wire:
    sub.outbox, sub.direct = wire, True
    return wire


async def parked(sub: Subscriber) -> asyncio.Task:
    task = sub.wait()
    await asyncio.sleep(0)
    assert sub.waiter is not None
    return task


def test_next_in_line_frames_are_written_at_once_without_waking_the_stream():
    async def scenario():
        sub = Subscriber(key="k", audience="reader", user_id=1)
        sub.last_id = 4
        wire = direct(sub, Wire())
        task = await parked(sub)
        sub.push_item((5, b"id: 5\n\n"), chunk(b"id: 5\n\n"))
        sub.push_many([(6, b"id: 6\n\n"), (7, b"id: 7\n\n")], 14)
        sub.push(None, b": ping\n\n")
        assert wire.written == [b"7\r\nid: 5\n\n\r\n", b"e\r\nid: 6\n\nid: 7\n\n\r\n", b"8\r\n: ping\n\n\r\n"]
        assert sub.last_id == 7 and not sub.chunks and not task.done()
        # Already sent (say, in the replay): dropped, not written twice.
        sub.push_item((7, b"id: 7\n\n"))
        assert len(wire.written) == 3 and not task.done()
        task.cancel()

    asyncio.run(scenario())


def test_a_frame_behind_a_gap_is_queued_and_wakes_the_stream_and_nothing_passes_it():
    async def scenario():
        sub = Subscriber(key="k", audience="reader", user_id=1)
        sub.last_id = 4
        wire = direct(sub, Wire())
        task = await parked(sub)
        sub.push_item((6, b"id: 6\n\n"))
        # Woken, not yet running: even the next frame is queued behind.
        sub.push_item((5, b"id: 5\n\n"))
        sub.push(None, b": ping\n\n")
        assert wire.written == [] and [seq for seq, _ in sub.chunks] == [6, 5, None]
        await asyncio.sleep(0)
        assert task.done()
        data, gap = sub.take()
        assert data == b"" and gap == 6

    asyncio.run(scenario())


def test_a_stream_that_is_not_parked_is_never_written_to_directly():
    sub = Subscriber(key="k", audience="reader", user_id=1)
    wire = direct(sub, Wire())
    sub.push_item((1, b"id: 1\n\n"))
    assert wire.written == [] and sub.chunks == [(1, b"id: 1\n\n")]


def test_unsent_bytes_past_the_bound_close_the_stream_as_slow_and_drop_the_connection():
    async def scenario():
        sub = Subscriber(key="k", audience="reader", user_id=1, max_bytes=1000)
        wire = direct(sub, Wire(unsent=1001))
        task = await parked(sub)
        sub.push_item((1, b"id: 1\n\n"))
        await asyncio.sleep(0)
        assert sub.closed and sub.reason == "slow" and wire.aborted and task.done()
        # The frame is not counted as sent: the client resumes from before it.
        assert sub.last_id == 0

    asyncio.run(scenario())


def test_a_connection_already_gone_closes_the_stream():
    async def scenario():
        sub = Subscriber(key="k", audience="reader", user_id=1)
        direct(sub, Wire(unsent=GONE))
        task = await parked(sub)
        sub.push_item((1, b"id: 1\n\n"))
        await asyncio.sleep(0)
        assert sub.closed and sub.reason == "client_gone" and task.done()

    asyncio.run(scenario())


class FakeTwistedTransport:
    """The attributes of a Twisted TCP transport that ``TwistedOutbox`` uses."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataBuffer: list[bytes] = []
        self._tempDataLen = 0
        self.connected = True
        self.disconnecting = False
        self._aborting = False
        self.TLS = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self._tempDataBuffer.append(data)
        self._tempDataLen += len(data)

    def abortConnection(self) -> None:
        self.aborted = True


class FakeRequest:
    def __init__(self) -> None:
        self.chunked = 1
        self.startedWriting = 1
        self.finished = 0
        self._disconnected = False


def test_twisted_outbox_sends_on_the_socket_and_leaves_only_the_rest_to_twisted():
    ours, theirs = socket.socketpair()
    try:
        ours.setblocking(False)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport = FakeTwistedTransport(ours)
        request = FakeRequest()
        outbox = TwistedOutbox(request, transport)
        # Not a plain ``tcp.Server`` (a TLS wrapper looks like this one: it
        # forwards lookups to the socket beneath): the stream stays on send.
        assert not outbox.start_direct()
        assert outbox.write(b"hello") == 0
        assert theirs.recv(100) == b"hello" and transport._tempDataBuffer == []
        # The peer stops reading: the socket takes what fits, Twisted gets the rest.
        big = b"x" * 1_000_000
        unsent = outbox.write(big)
        assert 0 < unsent < len(big) and outbox.pending() == unsent
        assert b"".join(transport._tempDataBuffer) == big[len(big) - unsent:]
        # Twisted holds bytes: the next write queues behind them, in order.
        assert outbox.write(b"next") == unsent + 4
        assert transport._tempDataBuffer[-1] == b"next"
        theirs.close()
        transport._tempDataBuffer, transport._tempDataLen = [], 0
        # A peer that is gone: the stream learns it at once and the connection is dropped.
        results = {outbox.write(b"y" * 65536) for _ in range(50)}
        assert GONE in results and transport.aborted
        assert TwistedOutbox(request, FakeTwistedTransport(ours)).closed() is False
        request.finished = 1  # daphne ended the response itself (--http-timeout)
        assert TwistedOutbox(request, FakeTwistedTransport(ours)).closed() is True
    finally:
        ours.close()
        theirs.close()


def test_an_unknown_server_keeps_the_stream_on_send():
    from realtime.transport import outbox_for

    async def send(message):
        pass

    outbox = outbox_for(send)
    assert not outbox.known and not outbox.start_direct() and outbox.write(b"x") == GONE


def test_the_hub_tick_closes_a_stream_whose_client_left(settings):
    """On a known server no task waits on ``receive``: the tick notices."""
    from realtime.hub import Hub, Topic

    settings.SSE_HEARTBEAT_SECONDS = 3600

    async def scenario():
        hub = Hub()
        topic = Topic("k")
        stays, leaves = Subscriber(key="k", audience="reader", user_id=1), Subscriber(key="k", audience="reader",
                                                                                           user_id=2)
        direct(stays, Wire())
        direct(leaves, Wire()).gone = True
        topic.audiences["reader"] = {stays, leaves}
        hub.topics["k"] = topic
        tasks = [await parked(stays), await parked(leaves)]
        await hub._tick_once()
        await asyncio.sleep(0)
        assert leaves.closed and leaves.reason == "client_gone" and tasks[1].done()
        assert not stays.closed and not tasks[0].done()
        tasks[0].cancel()

    asyncio.run(scenario())


def test_a_uvicorn_connection_that_stopped_reading_keeps_its_receive_watcher():
    """uvicorn reads no further after a large body or a pipelined request
    until ``receive`` is called: it could not see the client leave."""
    from types import SimpleNamespace

    from realtime.transport import AsyncioOutbox

    class Transport:
        def __init__(self):
            self.closing = False

        def get_write_buffer_size(self):
            return 0

        def get_extra_info(self, name):
            return None

        def is_closing(self):
            return self.closing

    transport = Transport()
    cycle = SimpleNamespace(transport=transport, flow=SimpleNamespace(read_paused=False))
    outbox = AsyncioOutbox(cycle, transport)
    assert outbox.closed() is False
    transport.closing = True
    assert outbox.closed() is True
    cycle.flow.read_paused = True
    assert outbox.closed() is None
