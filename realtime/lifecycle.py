"""Process start and stop: streams end promptly, requests in flight finish.

On SIGTERM (daphne and uvicorn alike) the hub closes every local stream with
a clean end of response, so clients reconnect at once (to another process or
the restarted one) and resume by Last-Event-ID; new streams are refused with
503 and ``Retry-After``; requests already running are given time to finish;
then the server's own SIGTERM handling proceeds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

logger = logging.getLogger(__name__)

# Non-stream HTTP requests being served now (see ``track_requests``).
_in_flight = 0
_installed = False
DRAIN_SECONDS = 10.0
STREAM_CLOSE_SECONDS = 2.0


async def _start_hub() -> None:
    from .hub import get_hub

    try:
        await get_hub().ensure_started()
    except Exception:  # noqa: BLE001 - the first stream tries again
        logger.warning("hub start failed; the first stream will try again", exc_info=True)


def start_hub_soon() -> None:
    """Start this process's hub in the background if it has not started:
    the first stream then opens without paying for it."""
    from .hub import get_hub

    if get_hub().started is None:
        task = asyncio.get_running_loop().create_task(_start_hub())
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()


def track_requests(app):
    """Wrap an ASGI app to count its HTTP requests in flight."""

    async def tracked(scope, receive, send):
        global _in_flight
        if scope["type"] != "http":
            return await app(scope, receive, send)
        install_graceful_shutdown()
        start_hub_soon()
        _in_flight += 1
        try:
            return await app(scope, receive, send)
        finally:
            _in_flight -= 1

    return tracked


async def lifespan(scope, receive, send) -> None:
    """ASGI lifespan (uvicorn): shutdown closes streams too, if SIGTERM did not."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            start_hub_soon()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown_streams()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def shutdown_streams(grace: float = STREAM_CLOSE_SECONDS) -> None:
    from .hub import get_hub

    hub = get_hub()
    count = hub.stream_count()
    hub.close_all("shutdown")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while hub.stream_count() and loop.time() < deadline:
        await asyncio.sleep(0.02)
    if count:
        logger.info("closed %d streams for shutdown", count)


async def _drain(previous, signum: int) -> None:
    await shutdown_streams()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    while _in_flight > 0 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    logger.info("drained (%d requests still in flight); stopping", _in_flight)
    # Hand the signal to the server's own handler, as if we had not been here.
    signal.signal(signum, previous)
    os.kill(os.getpid(), signum)


def install_graceful_shutdown() -> None:
    """Chain a SIGTERM handler in front of the server's.  Call from the loop's thread."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    previous = signal.getsignal(signal.SIGTERM)
    if getattr(previous, "docreview_drain", False):
        return
    loop = asyncio.get_running_loop()
    started = False

    def on_sigterm(signum, frame):
        nonlocal started
        if started:
            return
        started = True
        loop.call_soon_threadsafe(lambda: loop.create_task(_drain(previous, signum)))

    on_sigterm.docreview_drain = True
    signal.signal(signal.SIGTERM, on_sigterm)
