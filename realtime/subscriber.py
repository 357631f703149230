"""One open stream as the hub sees it: a bounded buffer and a wake-up.

The hub appends frames without awaiting anything; the stream's own coroutine
waits on the wake-up and drains the buffer in one write.  A client that stops
reading is closed once its buffer passes ``SSE_MAX_BUFFER_BYTES`` and resumes
by Last-Event-ID, so it delays nobody and loses nothing.

Fast path: while the stream's coroutine is parked in ``wait`` with nothing
queued and the server lets us write to the connection (``outbox``), a
frame that is next in line is written there by the hub at once, with no
wake-up: the connection's unsent bytes are then what counts against the
bound.  Anything else (a frame behind a gap, one already replayed) is queued
and wakes the stream as before.
"""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from .leases import Lease
from .transport import NO_OUTBOX, Outbox, chunk


class Subscriber:
    """One open stream, as the hub sees it: a bounded buffer and a wake-up."""

    __slots__ = (
        "key", "audience", "user_id", "last_id", "chunks", "size", "waiter",
        "closed", "closed_at", "reason", "last_write", "deadline", "max_bytes", "username", "lease", "opened_at", "outbox",
        "direct", "read_at",
    )

    def __init__(self, *, key: str, audience: str, user_id: int | None, lifetime: float | None = None,
                 max_bytes: int | None = None, username: str = "", lease: Lease | None = None) -> None:
        self.key = key
        self.audience = audience
        self.user_id = user_id
        self.last_id = 0
        # A list, not a deque: an empty deque already holds a 64-slot block
        # (~0.7 KB per stream), and ``take`` drains the whole list at once.
        self.chunks: list[tuple[int | None, bytes]] = []
        self.size = 0
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.closed_at = 0.0
        self.reason = ""
        self.last_write = time.monotonic()
        self.deadline = time.monotonic() + lifetime if lifetime else None
        self.max_bytes = max_bytes or settings.SSE_MAX_BUFFER_BYTES
        self.username = username
        self.lease = lease
        self.opened_at = time.time()
        # time.monotonic() when its access was read (``Grant.read_at``).
        self.read_at = time.monotonic()
        # The connection under the stream (``realtime.transport``): dropped
        # when the stream is closed for not reading, since its own buffers may
        # be what the client stopped reading.
        self.outbox: Outbox = NO_OUTBOX
        # Whether the hub may write to ``outbox`` directly; it does only while
        # ``waiter`` is set (the stream is parked).
        self.direct = False

    def push(self, seq: int | None, data: bytes) -> None:
        """Deliver a frame (``seq`` None: an ephemeral frame or a comment line)."""
        self.push_item((seq, data))

    def push_item(self, item: tuple[int | None, bytes], wire: bytes | None = None) -> None:
        """Deliver one ``(seq, frame)`` shared with other streams (``wire``:
        the same frame as an HTTP chunk, framed once for all of them): the
        fan-out allocates nothing per stream."""
        if self.closed:
            return
        if self.waiter is not None and self.direct:
            seq = item[0]
            if seq is None or seq == self.last_id + 1:
                self._write(wire if wire is not None else chunk(item[1]), seq)
                return
            if seq <= self.last_id:
                return
        self.chunks.append(item)
        self._grew(len(item[1]))

    def push_many(self, items: list[tuple[int | None, bytes]], size: int, wire: bytes | None = None) -> None:
        """Deliver several contiguous frames at once (a coalesced batch;
        ``wire``: all of them as one HTTP chunk)."""
        if self.closed:
            return
        if self.waiter is not None and self.direct and items[0][0] == self.last_id + 1:
            self._write(wire if wire is not None else chunk(b"".join(data for _, data in items)), items[-1][0])
            return
        self.chunks.extend(items)
        self._grew(size)

    def _write(self, wire: bytes, last: int | None) -> None:
        unsent = self.outbox.write(wire)
        if unsent < 0:
            self.close("client_gone")
        elif unsent > self.max_bytes:
            self.close("slow")
        elif last is not None:
            self.last_id = last

    def _grew(self, size: int) -> None:
        self.size += size
        if self.size > self.max_bytes:
            # The client is not reading: drop it rather than buffer without
            # bound; it resumes from its Last-Event-ID with nothing lost.
            self.chunks.clear()
            self.size = 0
            self.close("slow")
        else:
            self._wake()

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.closed_at = time.monotonic()
            self.reason = reason
            self._wake()
            if reason == "slow":
                self.outbox.abort()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            # Not parked any more: from here until the stream waits again,
            # frames are queued, not written (they would pass what it sends).
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        """A future done once there is something to send or the stream is
        closed (a future, not a coroutine: no frame kept per parked stream).
        While it is pending the stream is parked and may be written to
        directly."""
        future = asyncio.get_running_loop().create_future()
        if self.chunks or self.closed:
            future.set_result(None)
        else:
            self.waiter = future
        return future

    def take(self) -> tuple[bytes, int | None]:
        """The bytes to send now, and the seq of a frame held back behind a gap.

        Frames at or below ``last_id`` are dropped (already sent in the replay
        or a fill).  At a gap, the frames from the gap on stay queued and the
        gap's upper end is returned so the stream can fill it from the table.
        """
        out: list[bytes] = []
        chunks = self.chunks
        gap = None
        taken = 0
        for seq, data in chunks:
            if seq is not None:
                if seq <= self.last_id:
                    taken += 1
                    self.size -= len(data)
                    continue
                if seq != self.last_id + 1:
                    gap = seq
                    break
                self.last_id = seq
            taken += 1
            self.size -= len(data)
            out.append(data)
        if taken == len(chunks):
            chunks.clear()
        else:
            del chunks[:taken]
        return b"".join(out), gap
