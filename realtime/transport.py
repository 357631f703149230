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

For the servers it knows (uvicorn and daphne), ``Outbox`` reaches the socket
through ``send`` to cap the kernel buffer (``SSE_SEND_BUFFER_BYTES``), reads
how much the server holds unsent, and can drop the connection at once.  The
stream counts what the server holds against the same bound as its own
buffer, so a stalled client is closed after about ``SSE_MAX_BUFFER_BYTES``
whatever the server, and resumes by Last-Event-ID with nothing lost.  For any
other server every method is a harmless no-op and only the hub's bound
applies.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Callable

logger = logging.getLogger(__name__)


class Outbox:
    __slots__ = ("_transport", "_pending", "_abort", "_socket")

    def __init__(self, send: Callable[..., Any]) -> None:
        self._transport: Any = None
        self._pending: Callable[[], int] | None = None
        self._abort: Callable[[], None] | None = None
        self._socket: Any = None
        try:
            self._find(send)
        except Exception:  # noqa: BLE001 - a server we do not know: stay a no-op
            logger.debug("no transport found under send", exc_info=True)

    def _find(self, send: Callable[..., Any]) -> None:
        # uvicorn: ``send`` is a bound method of the request cycle, which holds
        # the asyncio transport.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None and hasattr(transport, "get_write_buffer_size"):
            self._transport = transport
            self._pending = transport.get_write_buffer_size
            self._abort = transport.abort
            self._socket = transport.get_extra_info("socket")
            return
        # daphne: ``send`` is ``partial(server.handle_reply, request)``; the
        # request's channel holds the Twisted TCP transport.
        args = getattr(send, "args", ())
        channel = getattr(args[0], "channel", None) if args else None
        transport = getattr(channel, "transport", None)
        if transport is not None and hasattr(transport, "dataBuffer") and hasattr(transport, "abortConnection"):
            self._transport = transport
            self._pending = lambda: (len(transport.dataBuffer) - transport.offset
                                     + getattr(transport, "_tempDataLen", 0))
            self._abort = transport.abortConnection
            self._socket = getattr(transport, "socket", None)

    @property
    def known(self) -> bool:
        return self._transport is not None

    def cap_send_buffer(self, size: int) -> None:
        """Bound the kernel's send buffer (Linux doubles ``size``); 0 leaves it to the kernel."""
        if size and self._socket is not None:
            try:
                self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
            except OSError:
                logger.debug("SO_SNDBUF not set", exc_info=True)

    def pending(self) -> int:
        """Bytes the server has accepted from ``send`` and not yet handed to the kernel."""
        if self._pending is None:
            return 0
        try:
            return self._pending()
        except Exception:  # noqa: BLE001 - connection already torn down
            return 0

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included."""
        if self._abort is not None:
            try:
                self._abort()
            except Exception:  # noqa: BLE001
                logger.debug("abort failed", exc_info=True)
