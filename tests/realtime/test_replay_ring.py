"""The replay ring covers what clients missed while a process was away, so a
reconnect storm replays from memory instead of one table read per stream."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from realtime import log
from realtime.hub import Hub, Subscriber, Topic, ring_audiences
from realtime.models import Event
from realtime.publish import record

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "guides/ring.md"


def write(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            record(key=KEY, type="comment.created", data={"i": i})


def age(seqs: range, seconds: float) -> None:
    Event.objects.filter(stream__key=KEY, seq__in=list(seqs)).update(
        created_at=timezone.now() - timedelta(seconds=seconds))


def test_read_recent_keeps_the_last_events_and_older_ones_of_the_last_seconds():
    write(30)
    age(range(1, 11), 60)  # 1..10 long ago, 11..30 just now
    recent = log.read_recent(KEY, limit=5, audiences=["reader"], seconds=10, most=100)
    assert recent.first == 11 and recent.last_id == 30
    assert [seq for seq, _ in recent.frames["reader"]] == list(range(11, 31))
    assert len(recent.times) == 20 and all(abs(t - time.time()) < 30 for t in recent.times)
    # Bounded: never more than ``most``; without a window, the last ``limit``.
    assert log.read_recent(KEY, limit=5, audiences=["reader"], seconds=10, most=8).first == 23
    assert log.read_recent(KEY, limit=5, audiences=["reader"]).first == 26


def test_read_recent_keeps_only_the_unbroken_run_that_ends_with_the_last_event():
    write(12)
    age(range(1, 13), 60)
    age([8], 0)  # recorded "recently" but cut off from the tail by 9 and 10
    recent = log.read_recent(KEY, limit=2, audiences=["reader"], seconds=10, most=100)
    assert [seq for seq, _ in recent.frames["reader"]] == [11, 12]


def _topic_with_ring(hub: Hub, seqs: range, recorded: float) -> Topic:
    topic = hub.topics[KEY] = Topic(KEY)
    topic.rings = {aud: [(seq, b"id: %d\n\n" % seq) for seq in seqs] for aud in ring_audiences(None)}
    topic.ring_times = [recorded] * len(seqs)
    topic.ring_first, topic.last_seq = seqs[0], seqs[-1]
    return topic


def _add(hub: Hub, topic: Topic, seq: int) -> None:
    frame = b"id: %d\n\n" % seq
    hub._ring_add(topic, seq, "comment.created", {aud: frame for aud in ring_audiences(None)})


def test_the_ring_keeps_every_event_of_the_last_seconds_up_to_its_bound(settings):
    settings.SSE_REPLAY_RING, settings.SSE_REPLAY_RING_SECONDS, settings.SSE_REPLAY_RING_MAX = 8, 10, 40

    async def scenario():
        hub = Hub()
        topic = _topic_with_ring(hub, range(1, 9), time.time())
        for seq in range(9, 31):
            _add(hub, topic, seq)
        sub = Subscriber(key=KEY, audience="reader", user_id=1)
        # All 30 are recent: a stream that missed 25 of them replays from memory.
        assert [seq for seq, _ in (await hub.replay(sub, 5, 100)).frames] == list(range(6, 31))
        for seq in range(31, 61):
            _add(hub, topic, seq)
        assert topic.ring_first > 60 - 40 and len(topic.ring_times) == 61 - topic.ring_first
        assert await hub.replay(sub, 5, 100) is None  # beyond the bound: the table answers

    asyncio.run(scenario())


def test_older_events_leave_the_ring_down_to_its_size(settings):
    settings.SSE_REPLAY_RING, settings.SSE_REPLAY_RING_SECONDS, settings.SSE_REPLAY_RING_MAX = 8, 10, 1000

    async def scenario():
        hub = Hub()
        topic = _topic_with_ring(hub, range(1, 21), time.time() - 60)
        for seq in range(21, 24):
            _add(hub, topic, seq)
        assert topic.ring_first == 23 + 1 - len(topic.rings["reader"])
        assert len(topic.rings["reader"]) <= 8 + 2 and len(topic.ring_times) == len(topic.rings["reader"])
        assert [seq for seq, _ in topic.rings["reader"]][-1] == 23

    asyncio.run(scenario())


def test_with_the_ring_off_it_holds_one_entry_and_replays_nothing(settings):
    settings.SSE_REPLAY_RING, settings.SSE_REPLAY_RING_SECONDS, settings.SSE_REPLAY_RING_MAX = 0, 10, 2048

    async def scenario():
        hub = Hub()
        topic = _topic_with_ring(hub, range(1, 2), time.time())
        for seq in range(2, 40):
            _add(hub, topic, seq)
        assert len(topic.rings["reader"]) <= 2 and topic.ring_first >= 38
        assert await hub.replay(Subscriber(key=KEY, audience="reader", user_id=1), 30, 100) is None

    asyncio.run(scenario())


def test_a_ring_dropped_by_a_jump_is_loaded_again(settings):
    settings.SSE_REPLAY_RING = 8
    write(12)

    async def scenario():
        hub = Hub()
        topic = _topic_with_ring(hub, range(1, 9), time.time())
        _add(hub, topic, 11)  # 9 and 10 never reached the ring
        assert topic.rings is None and topic.ring_loading is not None
        await asyncio.wait_for(asyncio.shield(topic.ring_loading), 5)
        sub = Subscriber(key=KEY, audience="reader", user_id=1)
        replay = await hub.replay(sub, 6, 100)
        assert [seq for seq, _ in replay.frames] == list(range(7, 13))

    asyncio.run(scenario())
