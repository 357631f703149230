"""Presence from the stream leases: a reconnect within the grace does not flicker."""

from __future__ import annotations

import asyncio

from realtime import presence
from realtime.leases import Lease, get_store, new_lease_id


def test_a_sweep_waits_out_the_grace_before_announcing_offline(settings, monkeypatch):
    settings.REDIS_URL = ""
    settings.SSE_PRESENCE_GRACE_SECONDS = 0.3
    announced: list[tuple[int, str]] = []

    async def record(key, user_id, username, status):
        announced.append((user_id, status))

    monkeypatch.setattr(presence, "announce", record)

    async def scenario():
        store = get_store()
        limits = {"user_limit": 5, "doc_limit": 1000}
        first = Lease(new_lease_id(), 7, "rob", "guides/setup.md")
        assert (await store.acquire(first, **limits)).went_online
        await store.release(first)
        # His last stream just closed: a sweep now must not call him offline...
        await presence.sweep(first.key)
        assert announced == []
        # ...and he is back within the grace.
        again = Lease(new_lease_id(), 7, "rob", first.key)
        await store.acquire(again, **limits)
        await asyncio.sleep(0.4)
        await presence.sweep(first.key)
        assert announced == []
        # Gone for good: offline once the grace has passed since a sweep saw it.
        await store.release(again)
        await presence.sweep(first.key)
        assert announced == []
        await asyncio.sleep(0.4)
        await presence.sweep(first.key)
        await presence.sweep(first.key)
        assert announced == [(7, "offline")]

    asyncio.run(scenario())
