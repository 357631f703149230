"""What an open stream keeps for its life: not the request's headers, and
not the server's idle per-connection containers (``Outbox.trim``), while the
connection under it works as before: pipelining, ``receive``, flow control."""

from __future__ import annotations

import asyncio
import collections
import time
from types import SimpleNamespace

import pytest

from realtime.leases import Lease, MemoryLeaseStore
from realtime.transport import TwistedOutbox, outbox_for
from tests.conftest import token_for
from tests.realtime.test_direct_writes import FakeRequest, FakeTwistedTransport


class UvicornTransport(asyncio.Transport):
    """What uvicorn's httptools protocol and ``AsyncioOutbox`` use of a transport."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False
        self.protocol = None

    def get_protocol(self):
        return self.protocol

    def get_extra_info(self, name, default=None):
        return default

    def write(self, data) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_a_stream_on_uvicorn_keeps_neither_headers_nor_idle_deques_and_its_connection_still_works(document, viewer):
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    from realtime.hub import get_hub
    from realtime.stream import EventStreamApp

    token = token_for(viewer)
    config = Config(app=EventStreamApp(), http="httptools", proxy_headers=False, lifespan="off")
    config.load()
    request = (f"GET /api/events?docPath=guides/setup.md HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Token {token}\r\nCookie: sessionid=not-kept\r\n\r\n").encode()

    async def scenario():
        transport = UvicornTransport()
        protocol = HttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
        transport.protocol = protocol
        protocol.connection_made(transport)
        protocol.data_received(request)
        hub = get_hub()
        await until(lambda: any(sub.direct for topic in hub.topics.values() for sub in topic.subscribers()))
        (sub,) = hub.topics["guides/setup.md"].subscribers()
        cycle = protocol.cycle
        assert b"200 OK" in transport.written
        # The headers are gone from the list uvicorn itself holds, not only from the scope.
        assert protocol.headers == [] and cycle.scope["headers"] == []
        trimmed = [protocol.pipeline, cycle.message_event._waiters, cycle.flow._is_writable_event._waiters]
        assert not any(isinstance(items, collections.deque) for items in trimmed)

        # ``receive`` still waits on its event and hears the client leave.
        assert (await cycle.receive())["type"] == "http.request"
        listening = asyncio.create_task(cycle.receive())
        await asyncio.sleep(0)
        assert not listening.done()

        # Flow control still holds a send back until the client reads.
        protocol.pause_writing()
        hub.close_all("shutdown")
        await asyncio.sleep(0.05)
        assert not transport.written.endswith(b"0\r\n\r\n")
        # A request pipelined behind the stream waits in uvicorn's pipeline ...
        protocol.data_received(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert len(protocol.pipeline) == 1
        protocol.resume_writing()
        # ... and is answered once the stream has ended.
        await until(lambda: b"401 Unauthorized" in transport.written)
        assert transport.written.index(b"0\r\n\r\n") < transport.written.index(b"401 Unauthorized")
        assert sub.closed and sub.reason == "shutdown"

        protocol.connection_lost(None)
        assert (await asyncio.wait_for(listening, 5))["type"] == "http.disconnect"

    asyncio.run(scenario())


def test_a_stream_on_daphne_trims_the_receive_queue_which_still_queues_and_wakes():
    from functools import partial

    request = FakeRequest()
    request.channel = SimpleNamespace(transport=FakeTwistedTransport(None))
    queue: asyncio.Queue = asyncio.Queue()  # daphne's: ``receive`` is its ``get``

    async def handle_reply(request, message):
        pass

    async def scenario():
        queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        outbox = outbox_for(partial(handle_reply, request))
        assert isinstance(outbox, TwistedOutbox)
        outbox.trim(queue.get)
        assert not any(isinstance(items, collections.deque)
                       for items in (queue._queue, queue._getters, queue._putters, queue._finished._waiters))
        assert (await queue.get())["type"] == "http.request"
        waiting = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        queue.put_nowait({"type": "http.disconnect"})
        assert (await asyncio.wait_for(waiting, 5))["type"] == "http.disconnect"
        queue.put_nowait(1)
        queue.put_nowait(2)
        assert [queue.get_nowait(), queue.get_nowait()] == [1, 2]
        for _ in range(4):
            queue.task_done()
        await asyncio.wait_for(queue.join(), 5)

    asyncio.run(scenario())


def test_renewed_memory_leases_keep_one_heap_entry_each_and_expire_on_their_last_renewal(settings, monkeypatch):
    settings.SSE_LEASE_TTL_SECONDS = 30
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])

    async def scenario():
        store = MemoryLeaseStore()
        kept, dropped = (Lease(id=f"i-{n}", user_id=n, username=f"u{n}", key="k") for n in (1, 2))
        for lease in (kept, dropped):
            assert (await store.acquire(lease, user_limit=5, doc_limit=5)).ok
        for _ in range(5):
            now[0] += 10
            await store.renew([kept])
        assert len(store.heap) == 2
        assert await store.online("k") == {1: "u1"}  # the other one expired at 1030
        now[0] += 29
        assert await store.online("k") == {1: "u1"}
        now[0] += 2
        assert await store.online("k") == {}
        assert store.heap == []

    asyncio.run(scenario())
