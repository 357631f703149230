"""Streams end, and leases, presence and revocations stay right, in the
corner cases: a client that stopped reading, a shutdown during an open, a
user back within the offline grace, a Redis restart, revocations committed
out of id order."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from realtime import hub as hub_module
from realtime.hub import CLOSE_GRACE_SECONDS, PRESENCE_BLOB_SECONDS, Hub, Topic
from realtime.leases import Lease, RedisLeaseStore
from realtime.models import Revocation
from realtime.subscriber import Subscriber
from tests.realtime.test_direct_writes import Wire, direct, parked


def test_the_tick_drops_the_connection_of_a_stream_stuck_after_it_was_closed(settings):
    settings.SSE_HEARTBEAT_SECONDS = 3600

    async def scenario():
        hub = Hub()
        topic = Topic("k")
        stuck, ending = Subscriber(key="k", audience="reader", user_id=1), Subscriber(key="k", audience="reader",
                                                                                           user_id=2)
        stuck_wire, ending_wire = direct(stuck, Wire()), direct(ending, Wire())
        topic.audiences["reader"] = {stuck, ending}
        hub.topics["k"] = topic
        stuck.close("revoked")
        ending.close("revoked")
        stuck.closed_at -= CLOSE_GRACE_SECONDS  # its coroutine never got to unsubscribe
        await hub._tick_once()
        assert stuck_wire.aborted
        assert not ending_wire.aborted  # just closed: it gets its chance to end cleanly

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_stream_registered_after_shutdown_began_is_closed_too():
    async def scenario():
        hub = Hub()
        await hub.ensure_started()
        early = Subscriber(key="guides/a.md", audience="reader", user_id=1)
        await hub.subscribe(early)
        hub.close_all("shutdown")
        late = Subscriber(key="guides/a.md", audience="reader", user_id=2)
        await hub.subscribe(late)  # was opening while close_all ran
        assert early.closed and late.closed and late.reason == "shutdown"

    asyncio.run(scenario())


def test_presence_frames_are_shared_for_a_moment_only(monkeypatch):
    snapshots = []

    async def snapshot(key):
        snapshots.append(key)
        return f"frames {len(snapshots)}".encode()

    monkeypatch.setattr(hub_module, "_presence_snapshot", snapshot)

    async def scenario():
        hub = Hub()
        topic = hub.topics["k"] = Topic("k")
        first = await hub.presence_frames("k")
        assert await hub.presence_frames("k") == first == b"frames 1"  # a burst of opens: one fetch
        # A user back within the offline grace is never announced again: a
        # snapshot taken during their gap must not outlive the moment.
        topic.presence_at -= PRESENCE_BLOB_SECONDS
        assert await hub.presence_frames("k") == b"frames 2"

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_revocation_committed_after_a_higher_id_is_still_applied():
    revoked = []

    async def scenario():
        hub = Hub()
        hub.revoke = lambda user_id, key, at=None: revoked.append((user_id, key))
        hub.revocation_cursor = 0
        await hub._poll_revocations()
        # Ids 1 and 2 handed out; 2 commits first (PostgreSQL does this).
        await asyncio.to_thread(Revocation.objects.create, id=2, user_id=22, key="")
        await hub._poll_revocations()
        assert revoked == [(22, None)] and hub.revocation_cursor == 2
        await asyncio.to_thread(Revocation.objects.create, id=1, user_id=11, key="guides/a.md")
        await hub._poll_revocations()
        assert revoked == [(22, None), (11, "guides/a.md")]
        await hub._poll_revocations()
        assert len(revoked) == 2  # each applied once
        assert hub.revocation_gaps == {}

    asyncio.run(scenario())


def test_redis_leases_lost_in_a_restart_come_back_with_the_renewal_but_released_ones_do_not(redis_url):
    async def scenario():
        store = RedisLeaseStore(redis_url, f"test-{uuid.uuid4().hex[:8]}")
        try:
            open_one = Lease(id=f"{uuid.uuid4().hex}-a", user_id=7, username="vera", key="guides/a.md")
            leaving = Lease(id=f"{uuid.uuid4().hex}-b", user_id=8, username="rob", key="guides/a.md")
            for lease in (open_one, leaving):
                assert (await store.acquire(lease, user_limit=5, doc_limit=100)).ok
            renewal = [open_one, leaving]  # taken before ``leaving`` closes
            await store.release(leaving)
            keys = await store.redis.keys(f"{store.prefix}:lease:*")
            await store.redis.delete(*[k for k in keys if b":released:" not in k])  # Redis forgot the leases
            assert await store.online("guides/a.md") == {}
            await store.renew(renewal)
            assert await store.online("guides/a.md") == {7: "vera"}
            assert await store.user_count("guides/a.md", 7) == 1
            assert await store.user_count("guides/a.md", 8) == 0
        finally:
            keys = await store.redis.keys(f"{store.prefix}:*")
            if keys:
                await store.redis.delete(*keys)
            await store.redis.aclose()

    asyncio.run(scenario())


def test_a_pruned_event_is_not_replayed_from_the_ring_but_reset(settings):
    settings.SSE_REPLAY_RING = 256

    async def scenario():
        hub = Hub()
        topic = hub.topics["k"] = Topic("k")
        topic.rings = {"reader": [(seq, f"id: {seq}\n\n".encode()) for seq in range(1, 11)]}
        topic.ring_first, topic.last_seq = 1, 10
        sub = Subscriber(key="k", audience="reader", user_id=1)
        assert (await hub.replay(sub, 3, 100)).frames[0][0] == 4
        hub.dispatch({"type": "realtime.control", "action": "pruned", "key": "k", "first_kept": 6})
        assert await hub.replay(sub, 3, 100) is None  # the table answers: stream.reset
        replay = await hub.replay(sub, 7, 100)
        assert [seq for seq, _ in replay.frames] == [8, 9, 10]
        assert [seq for seq, _ in (await hub.replay(sub, None, 100)).frames] == [6, 7, 8, 9, 10]

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_stream_whose_access_was_read_before_a_revocation_is_closed_when_it_registers_after_it():
    """Its grant was read (or cached) before the revocation, and its lease was
    being taken while the revocation closed the streams registered then."""
    import time

    async def scenario():
        hub = Hub()
        await hub.ensure_started()
        stale = Subscriber(key="guides/a.md", audience="reader", user_id=7)
        stale.read_at = time.monotonic()
        other_user = Subscriber(key="guides/a.md", audience="reader", user_id=8)
        other_user.read_at = stale.read_at
        await asyncio.sleep(0.01)
        hub.apply_revocation(1, 7, "guides/a.md", time.time())
        await asyncio.sleep(0.01)
        fresh = Subscriber(key="guides/a.md", audience="reader", user_id=7)  # read after it: stays
        for sub in (stale, other_user, fresh):
            await hub.subscribe(sub)
        return stale, other_user, fresh

    stale, other_user, fresh = asyncio.run(scenario())
    assert stale.closed and stale.reason == "revoked"
    assert not other_user.closed and not fresh.closed


@pytest.mark.django_db(transaction=True)
def test_an_authorisation_read_across_a_revocation_is_read_again_and_not_cached(monkeypatch, settings):
    """A batch of access checks in flight when a revocation arrives may have
    read the access before it: it is read again, and only that answer counts."""
    import threading

    from realtime import gate as gate_module

    settings.SSE_AUTH_CACHE_SECONDS = 10
    calls = []
    release = threading.Event()

    def authorize_many(requests):
        calls.append(len(calls))
        if len(calls) == 1:
            release.wait(5)  # the first read is slow: the revocation lands meanwhile
            return [gate_module.Grant(True, 7, "rob", "reader", 1.0, 1.0) for _ in requests]
        return [gate_module.Grant(True, 7, "rob", None, 2.0, 2.0) for _ in requests]

    monkeypatch.setattr(gate_module, "authorize_many", authorize_many)

    async def scenario():
        gate = gate_module.Gate()
        headers = [(b"authorization", b"Token abc")]
        opening = asyncio.ensure_future(gate.authorize(headers, "guides/a.md"))
        deadline = asyncio.get_running_loop().time() + 5
        while not calls:
            assert asyncio.get_running_loop().time() < deadline, "the batch was never read"
            await asyncio.sleep(0.005)
        gate.evict(7, "guides/a.md")
        release.set()
        grant = await opening
        again = await gate.authorize(headers, "guides/a.md")
        return grant, again

    grant, again = asyncio.run(scenario())
    assert len(calls) >= 2
    assert grant.audience is None and again.audience is None  # the stale "reader" was neither used nor cached


def test_a_hung_database_holds_back_neither_pings_nor_the_lease_heartbeat(settings, monkeypatch):
    settings.SSE_HEARTBEAT_SECONDS = 0
    settings.REDIS_URL = ""
    from realtime import leases

    beats = []

    class Store(leases.MemoryLeaseStore):
        async def heartbeat(self):
            beats.append(1)

    async def scenario():
        monkeypatch.setattr(hub_module, "get_store", lambda: store)
        hub = Hub()
        hub.layer_ok = True
        hung = asyncio.Event()
        polls = []

        async def poll():
            polls.append(1)
            await hung.wait()  # a database that never answers

        hub._poll_revocations = poll
        hub.resync = poll
        hub.last_resync = float("-inf")  # due now
        topic = Topic("k")
        sub = Subscriber(key="k", audience="reader", user_id=1)
        topic.audiences["reader"] = {sub}
        hub.topics["k"] = topic
        for _ in range(3):
            await asyncio.wait_for(hub._tick_once(), 2)
            await asyncio.sleep(0)
        pings = sum(1 for _, data in sub.chunks if data == b": ping\n\n")
        hung.set()
        return pings, len(polls)

    store = Store()
    pings, polls = asyncio.run(scenario())
    assert pings == 3 and len(beats) == 3
    assert polls == 2  # one revocation poll and one resync, each still waiting: not started again
