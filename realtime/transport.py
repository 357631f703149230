"""The connection under an event stream, as far as the ASGI server lets us see it.

ASGI gives an application ``send`` and nothing else, so it cannot tell a
client that stopped reading from one that is merely far away: the bytes
leave ``send`` and pile up below it.  Three places hold them:

- the kernel's send buffer, which Linux autotunes up to ``tcp_wmem`` (4 MB
  by default) for a socket that is not read;
- the server's own write buffer: uvicorn (asyncio) pauses ``send`` above
  64 KB, so it stays small; daphne (Twisted) never makes ``send`` wait, so it
  grows without bound;
- the hub's per-stream buffer (``Subscriber``), bounded by
  ``SSE_MAX_BUFFER_BYTES``.

For the servers it knows (uvicorn, and daphne), ``outbox_for`` reaches the
connection through ``send`` to cap the kernel buffer
(``SSE_SEND_BUFFER_BYTES``), read how much the server holds unsent, drop the
connection at once, and, once the response is under way on uvicorn's
httptools protocol or on daphne over plain TCP, write an HTTP/1.1 chunk
straight to the transport.

That last one is the fan-out's fast path.  Through ``send`` each delivery
costs a wake-up of the stream's task, a coroutine, an ASGI message and, under
daphne, a reactor registration per write (Twisted waits for the socket to be
writable before every write).  ``write`` is what ``send`` would have put on
the wire, done in the hub's loop without awaiting: it never blocks, and what
the socket does not take at once stays in the server's buffer, counted
against the stream's bound.  The stream only lets the hub write while it is
itself parked with nothing queued (``Subscriber.wait``), so the bytes of one
connection always go out in order.

The same access tells the hub that a client has gone (``closed``), so a
stream on a known server needs no task of its own waiting on ``receive``
for ``http.disconnect``: one coroutine per stream, and its memory.

A stream holds its connection for up to an hour, and the server's
per-connection objects are most of what it costs in memory.  ``trim``
shrinks the containers the server made for request bodies, pipelining and
flow control, which a stream leaves idle: each ``collections.deque`` in them
(an empty one holds a 64-slot block, ~0.7 KB) becomes a list of the same
items (``_Line``, ~0.06 KB empty).  Under uvicorn: the protocol's pipeline
and the waiters of its two ``asyncio.Event`` (``receive``'s, flow
control's); under daphne: the four of the ``asyncio.Queue`` that
``receive`` reads.

For any other server every method is a harmless no-op, ``start_direct`` is
False, and the stream writes through ``send`` and watches ``receive`` as ASGI
intends.  HTTP/1.0, uvicorn's h11 protocol and daphne over TLS keep ``send``
too (``start_direct`` is False) but are still watched through ``closed``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from typing import Any, Callable

logger = logging.getLogger(__name__)

GONE = -1


class _Line(list):
    """A ``collections.deque`` as asyncio's ``Event`` and ``Queue`` and
    uvicorn's pipeline use it (``append``, ``appendleft``, ``pop``,
    ``popleft``, ``remove``, iteration), for a handful of items at most."""

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)

    def popleft(self) -> Any:
        return self.pop(0)


def _trimmed(owner: Any, name: str) -> None:
    """Replace ``owner.<name>``, a deque, with a ``_Line`` of its items."""
    items = getattr(owner, name, None)
    if type(items) is collections.deque and items.maxlen is None:
        setattr(owner, name, _Line(items))


def _trim_event(event: Any) -> None:
    if type(event) is asyncio.Event:
        _trimmed(event, "_waiters")


def _trim_queue(queue: Any) -> None:
    if type(queue) is asyncio.Queue:
        for name in ("_queue", "_getters", "_putters"):
            _trimmed(queue, name)
        _trim_event(getattr(queue, "_finished", None))


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk, as uvicorn and Twisted frame it."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class Outbox:
    """A server this module does not know: ``send`` is all there is."""

    __slots__ = ()

    @property
    def known(self) -> bool:
        return False

    def cap_send_buffer(self, size: int) -> None:
        """Bound the kernel's send buffer (Linux doubles ``size``); 0 leaves it to the kernel."""

    def pending(self) -> int:
        """Bytes the server has accepted and not yet handed to the kernel."""
        return 0

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included."""

    def start_direct(self) -> bool:
        """Whether ``write`` may be used from now on (the response has begun,
        chunked).  False leaves the stream on ``send``."""
        return False

    def closed(self) -> bool | None:
        """Whether the client has gone; None when only ``receive`` can tell."""
        return None

    def trim(self, receive: Callable[..., Any]) -> None:
        """Shrink the server's per-connection containers that a long-lived
        response leaves idle (same items, same behaviour, less memory);
        ``receive`` is the application's."""

    def write(self, wire: bytes) -> int:
        """Put one pre-framed chunk on the connection without awaiting.

        Returns the bytes the server now holds unsent, or ``GONE`` when the
        connection is closed or closing."""
        return GONE


class _KnownOutbox(Outbox):
    __slots__ = ("_transport", "_socket")

    def __init__(self, transport: Any, sock: Any) -> None:
        self._transport = transport
        self._socket = sock

    @property
    def known(self) -> bool:
        return True

    def cap_send_buffer(self, size: int) -> None:
        if size and self._socket is not None:
            try:
                self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
            except OSError:
                logger.debug("SO_SNDBUF not set", exc_info=True)


class AsyncioOutbox(_KnownOutbox):
    """uvicorn's httptools protocol: ``send`` is a bound method of the request
    cycle, which holds the asyncio (uvloop) transport.  ``transport.write``
    sends at once when nothing is queued and buffers the rest itself."""

    __slots__ = ("_cycle",)

    def __init__(self, cycle: Any, transport: Any) -> None:
        super().__init__(transport, transport.get_extra_info("socket"))
        self._cycle = cycle

    def pending(self) -> int:
        try:
            return self._transport.get_write_buffer_size()
        except Exception:  # noqa: BLE001 - connection already torn down
            return 0

    def abort(self) -> None:
        try:
            self._transport.abort()
        except Exception:  # noqa: BLE001
            logger.debug("abort failed", exc_info=True)

    def start_direct(self) -> bool:
        cycle = self._cycle
        # ``chunked_encoding`` is httptools' own framing flag (h11 has none):
        # True once a response without a length has started on HTTP/1.1.
        return (getattr(cycle, "chunked_encoding", None) is True and cycle.response_started
                and not cycle.response_complete and not cycle.disconnected)

    def trim(self, receive: Callable[..., Any]) -> None:
        cycle = self._cycle
        _trim_event(getattr(cycle, "message_event", None))
        _trim_event(getattr(getattr(cycle, "flow", None), "_is_writable_event", None))
        try:
            protocol = self._transport.get_protocol()
        except Exception:  # noqa: BLE001 - a transport without one: nothing to trim
            return
        if getattr(protocol, "cycle", None) is cycle:
            _trimmed(protocol, "pipeline")

    def closed(self) -> bool | None:
        # uvicorn stops reading a connection that sent a large body or a
        # pipelined request until ``receive`` is called: it would not see the
        # client leave, so such a stream keeps its ``receive`` watcher.
        if getattr(getattr(self._cycle, "flow", None), "read_paused", False):
            return None
        return self._transport.is_closing()

    def write(self, wire: bytes) -> int:
        transport = self._transport
        if transport.is_closing():
            return GONE
        transport.write(wire)
        return transport.get_write_buffer_size()


class TwistedOutbox(_KnownOutbox):
    """daphne: ``send`` is ``partial(server.handle_reply, request)``; the
    request's channel holds the Twisted TCP transport.  Twisted queues every
    write and sends it on the reactor's next writable event; ``write`` sends
    on the socket at once when Twisted holds nothing unsent, and hands only
    what the socket refused to Twisted."""

    __slots__ = ("_request",)

    def __init__(self, request: Any, transport: Any) -> None:
        super().__init__(transport, getattr(transport, "socket", None))
        self._request = request

    def trim(self, receive: Callable[..., Any]) -> None:
        # ``receive`` is ``queue.get`` of the connection's input queue.
        _trim_queue(getattr(receive, "__self__", None))

    def pending(self) -> int:
        transport = self._transport
        try:
            return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        except Exception:  # noqa: BLE001
            return 0

    def abort(self) -> None:
        try:
            self._transport.abortConnection()
        except Exception:  # noqa: BLE001
            logger.debug("abort failed", exc_info=True)

    def start_direct(self) -> bool:
        request, transport = self._request, self._transport
        # Only a plain TCP connection: under TLS (or any other wrapper, which
        # forwards attribute lookups to the TCP transport beneath it) bytes
        # written to the socket would bypass the encryption.
        from twisted.internet import tcp

        return (type(transport) is tcp.Server and not transport.TLS and self._socket is not None
                and getattr(request, "chunked", 0) == 1 and bool(request.startedWriting)
                and not self.closed())

    def closed(self) -> bool:
        # ``finished``: daphne ended the response itself (``--http-timeout``);
        # the connection may live on for the next request, this stream may not.
        request, transport = self._request, self._transport
        return bool(request._disconnected or request.finished or not transport.connected
                    or transport.disconnecting or getattr(transport, "_aborting", False))

    def write(self, wire: bytes) -> int:
        transport = self._transport
        if self.closed():
            return GONE
        pending = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        if not pending:
            try:
                sent = self._socket.send(wire)
            except BlockingIOError:
                sent = 0
            except OSError:
                # Reset or broken pipe: Twisted learns of it on its next read;
                # drop the connection so nothing else is written to it.
                self.abort()
                return GONE
            if sent == len(wire):
                return 0
            wire = wire[sent:]
        transport.write(wire)
        return pending + len(wire)


NO_OUTBOX = Outbox()


def outbox_for(send: Callable[..., Any]) -> Outbox:
    """The ``Outbox`` for the connection under ``send``."""
    try:
        # uvicorn: ``send`` is a bound method of the request cycle.
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is not None and hasattr(transport, "get_write_buffer_size"):
            return AsyncioOutbox(cycle, transport)
        # daphne: ``send`` is ``partial(server.handle_reply, request)``.
        args = getattr(send, "args", ())
        request = args[0] if args else None
        transport = getattr(getattr(request, "channel", None), "transport", None)
        if transport is not None and hasattr(transport, "dataBuffer") and hasattr(transport, "abortConnection"):
            return TwistedOutbox(request, transport)
    except Exception:  # noqa: BLE001 - a server we do not know: stay a no-op
        logger.debug("no transport found under send", exc_info=True)
    return NO_OUTBOX
