"""Process start and stop: close streams promptly on shutdown."""

from __future__ import annotations

import asyncio
import logging

from .hub import get_hub

logger = logging.getLogger(__name__)


async def lifespan(scope, receive, send) -> None:
    """ASGI lifespan: on shutdown, end every local stream so clients reconnect now."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown_streams()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def shutdown_streams(grace: float = 2.0) -> None:
    hub = get_hub()
    count = hub.stream_count()
    hub.close_all("shutdown")
    deadline = asyncio.get_running_loop().time() + grace
    while hub.stream_count() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    logger.info("closed %d streams for shutdown", count)

