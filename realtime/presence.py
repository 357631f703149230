"""Who is online on a document, from the stream leases.

A user is online on a key while one of their streams to it holds a live
lease, on any process.  ``online`` is announced when their first stream
opens; ``offline`` when the last one closes and no new one opened within a
short grace period (a reconnect does not flicker), or when a dead process's
leases expire.  ``LeaseStore.flip`` lets exactly one process announce each
change.  Announcements are ephemeral: no ``id:``, never stored or replayed.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from . import sse
from .leases import Lease, get_store
from .groups import group_for
from .publish import abroadcast, ephemeral_message

logger = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"


def presence_data(user_id: int, username: str, status: str) -> dict:
    return {"userId": user_id, "username": username, "status": status}


def presence_frame(key: str, user_id: int, username: str, status: str) -> bytes:
    """The frame a new stream gets for each user already online."""
    return sse.frame(event="user.presence", data=sse.dumps(
        {"type": "user.presence", "docPath": key, "data": presence_data(user_id, username, status)}))


# Presence changes of one key are sent together, at most this often: a storm
# of joins costs each stream one wake-up per window, not one per user.
BATCH_SECONDS = 0.25
_pending: dict[str, dict[int, tuple[str, str]]] = {}


async def announce(key: str, user_id: int, username: str, status: str) -> None:
    """Queue a presence change of ``key``; the window's last word per user is sent."""
    batch = _pending.get(key)
    if batch is None:
        batch = _pending[key] = {}
        asyncio.get_running_loop().call_later(BATCH_SECONDS, lambda: asyncio.ensure_future(_send(key)))
    batch[user_id] = (username, status)


async def _send(key: str) -> None:
    batch = _pending.pop(key, {})
    if not batch:
        return
    # The user's own streams (other tabs) know already; everyone else learns.
    items = [
        ephemeral_message(key, "user.presence", presence_data(uid, username, status), exclude_user=uid)
        for uid, (username, status) in batch.items()
    ]
    message = dict(items[0], items=items) if len(items) > 1 else items[0]
    await abroadcast(group_for(key), message)


async def joined(lease: Lease, went_online: bool) -> None:
    """A stream of ``lease.user_id`` opened on ``lease.key``; its lease
    acquisition said whether that made the user online (one write per stream)."""
    if went_online:
        await announce(lease.key, lease.user_id, lease.username, ONLINE)


async def left(lease: Lease) -> None:
    """A stream closed: release its lease; announce offline after the grace period."""
    store = get_store()
    try:
        remaining = await store.release(lease)
    except Exception:  # noqa: BLE001 - the lease expires by itself
        logger.warning("lease release failed for %s", lease.key, exc_info=True)
        return
    if remaining == 0:
        asyncio.get_running_loop().call_later(
            settings.SSE_PRESENCE_GRACE_SECONDS,
            lambda: asyncio.ensure_future(_offline_if_gone(lease.key, lease.user_id, lease.username)),
        )


async def _offline_if_gone(key: str, user_id: int, username: str) -> None:
    store = get_store()
    try:
        if await store.user_count(key, user_id) == 0 and await store.flip(key, user_id, OFFLINE, username):
            await announce(key, user_id, username, OFFLINE)
    except Exception:  # noqa: BLE001 - the next sweep retries
        logger.warning("presence offline failed for %s", key, exc_info=True)


# (key, user id) -> when a sweep of this process first found the user
# announced online with no live stream.
_absent: dict[tuple[str, int], float] = {}


async def sweep(key: str) -> None:
    """Announce offline for users whose leases expired (their process died).

    A user found without a stream is announced offline only once the grace
    period has passed since a sweep first found them so: their last stream
    may have just closed, and a reconnect within the grace does not flicker
    (``left`` gives the same grace on the process that held the stream)."""
    store = get_store()
    online = await store.online(key)
    announced = await store.announced_online(key)
    now = asyncio.get_running_loop().time()
    for user_id, username in announced.items():
        if user_id in online:
            _absent.pop((key, user_id), None)
            continue
        since = _absent.setdefault((key, user_id), now)
        if now - since < settings.SSE_PRESENCE_GRACE_SECONDS:
            continue
        _absent.pop((key, user_id), None)
        if await store.flip(key, user_id, OFFLINE, username):
            await announce(key, user_id, username, OFFLINE)
    for gone in [entry for entry in _absent if entry[0] == key and entry[1] not in announced]:
        del _absent[gone]


async def snapshot(key: str) -> list[tuple[int, str]]:
    """Users online on ``key`` now, as (user_id, username)."""
    return sorted((await get_store().online(key)).items())
