"""The per-process hub in isolation: ordering, gap fills, coalescing, slow clients."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.db import transaction

from realtime import hub as hub_module
from realtime.hub import Hub, Subscriber
from realtime.publish import EVENT_MESSAGE, record
from reviews import services

pytestmark = pytest.mark.django_db(transaction=True)


def make_events(document, author, n):
    """Commit ``n`` events and return the layer messages they would publish."""
    messages = []
    for i in range(n):
        with transaction.atomic():
            event = record(key=document.path, type="comment.created", data={"id": i, "body": f"b{i}"})
        messages.append({"type": EVENT_MESSAGE, "key": document.path, "seq": event.seq, "event": event.type,
                         "payload": f'{{"id":{event.seq}}}', "variants": {}})
    return messages


def seqs(sub: Subscriber) -> list[int]:
    data, gap = sub.take()
    assert gap is None
    return [int(line[4:]) for line in data.decode().splitlines() if line.startswith("id: ")]


def test_take_drops_what_was_sent_and_stops_at_a_gap():
    sub = Subscriber(key="k", audience="reader", user_id=1)
    sub.last_id = 2
    for seq in (1, 2, 3, 4, 6, 7):
        sub.push(seq, f"id: {seq}\n\n".encode())
    sub.push(None, b": ping\n\n")
    data, gap = sub.take()
    assert data == b"id: 3\n\nid: 4\n\n" and gap == 6
    sub.last_id = 5  # the stream filled 5 from the table
    data, gap = sub.take()
    assert data == b"id: 6\n\nid: 7\n\n: ping\n\n" and gap is None


def test_a_client_that_stops_reading_is_closed_past_its_buffer_bound():
    sub = Subscriber(key="k", audience="reader", user_id=1, max_bytes=1000)
    for seq in range(1, 100):
        sub.push(seq, b"x" * 100)
    assert sub.closed and sub.reason == "slow" and not sub.chunks


def test_hub_delivers_in_order_and_fills_gaps_from_the_table(document, reviewer, settings):
    settings.SSE_COALESCE_MS = 0

    async def scenario():
        hub = Hub()
        sub = Subscriber(key=document.path, audience="reader", user_id=reviewer.pk)
        await hub.subscribe(sub)
        messages = await asyncio.to_thread(make_events, document, reviewer, 5)
        # The layer lost 1 and 2 and swapped 4 and 3: the hub must still
        # hand out 1..5 exactly once, in order.
        for message in (messages[3], messages[2], messages[4]):
            hub.dispatch(message)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(sub.chunks) < 5:
            await asyncio.sleep(0.01)
        for message in messages:
            hub.dispatch(message)  # late duplicates are dropped
        for task in hub.tasks:
            task.cancel()
        return seqs(sub)

    assert asyncio.run(scenario()) == [1, 2, 3, 4, 5]


def test_busy_key_is_coalesced_into_one_wake_per_window_and_quiet_key_is_immediate(document, reviewer, settings):
    settings.SSE_COALESCE_MS = 30

    async def scenario():
        hub = Hub()
        sub = CountingSubscriber(key=document.path, audience="reader", user_id=reviewer.pk)
        await hub.subscribe(sub)
        messages = await asyncio.to_thread(make_events, document, reviewer, 6)
        hub.dispatch(messages[0])
        first_immediate = len(sub.chunks) == 1
        for message in messages[1:]:
            hub.dispatch(message)
        held_back = len(sub.chunks) == 1
        await asyncio.sleep(0.1)
        for task in hub.tasks:
            task.cancel()
        return first_immediate, held_back, sub.wakes, seqs(sub)

    first_immediate, held_back, wakes, received = asyncio.run(scenario())
    assert first_immediate, "a quiet key's event must not wait"
    assert held_back, "a busy key's events wait for the window"
    assert wakes == 2, "one wake for the first event, one for the batch"
    assert received == [1, 2, 3, 4, 5, 6]


def test_variants_are_encoded_once_per_audience(document, reviewer):
    async def scenario():
        hub = Hub()
        reader = Subscriber(key=document.path, audience="reader", user_id=1)
        readers = [Subscriber(key=document.path, audience="reader", user_id=i) for i in range(2, 5)]
        moderator = Subscriber(key=document.path, audience="moderator", user_id=9)
        for sub in [reader, moderator, *readers]:
            await hub.subscribe(sub)
        [message] = await asyncio.to_thread(make_events, document, reviewer, 1)
        message["variants"] = {"reader": ["comment.deleted", '{"id":1}']}
        hub.dispatch(message)
        for task in hub.tasks:
            task.cancel()
        return reader, readers, moderator

    reader, readers, moderator = asyncio.run(scenario())
    reader_frame = reader.chunks[0][1]
    assert b"event: comment.deleted" in reader_frame
    assert all(r.chunks[0][1] is reader_frame for r in readers), "one encoding shared by the audience"
    assert b"event: comment.created" in moderator.chunks[0][1]


class CountingSubscriber(Subscriber):
    __slots__ = ("wakes",)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.wakes = 0

    def _wake(self):
        self.wakes += 1
        super()._wake()


@pytest.fixture(autouse=True)
def _fresh_hubs(monkeypatch):
    # The hub under test gets exactly the messages each test dispatches.
    from realtime import publish

    monkeypatch.setattr(publish, "broadcast", lambda key, message: True)
    hub_module._hubs.clear()
    yield
    hub_module._hubs.clear()


@pytest.fixture
def document(maintainer):
    return services.document_create(user=maintainer, path="notes/hub.md", title="Hub", content="text")


def test_a_presence_batch_reaches_each_stream_with_one_wake_and_skips_each_users_own_change(document):
    from realtime.presence import presence_data
    from realtime.publish import ephemeral_message

    async def scenario():
        hub = Hub()
        subs = [CountingSubscriber(key=document.path, audience="reader", user_id=uid) for uid in (1, 2, 3)]
        for sub in subs:
            await hub.subscribe(sub)
        items = [ephemeral_message(document.path, "user.presence", presence_data(uid, f"u{uid}", "online"),
                                   exclude_user=uid) for uid in range(1, 101)]
        hub.dispatch(dict(items[0], items=items))
        for task in hub.tasks:
            task.cancel()
        return subs

    for sub in asyncio.run(scenario()):
        assert sub.wakes == 1
        data, _ = sub.take()
        frames = data.decode().count("event: user.presence")
        assert frames == 99, "everyone's change but the stream's own user"
        assert f'"userId":{sub.user_id},' not in data.decode()


@pytest.mark.parametrize("threshold", [0, 1234])
def test_the_collector_threshold_is_the_setting_once_the_hub_starts(settings, threshold):
    import gc

    settings.GC_GEN0_THRESHOLD = threshold
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)

    async def scenario():
        hub = Hub()
        await hub.ensure_started()
        for task in hub.tasks:
            task.cancel()
        return gc.get_threshold()

    try:
        assert asyncio.run(scenario()) == ((700, 10, 10) if threshold == 0 else (1234, 20, 50))
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_revocation_closes_streams_opened_until_shortly_after_its_time(document, reviewer):
    """Its row's time is taken before its transaction commits, on another host's
    clock: a stream authorised just after it may still have seen the old access."""

    async def scenario():
        hub = Hub()
        at = time.time()
        subs = {}
        for name, opened in (("before", at - 1), ("just_after", at + 2), ("well_after", at + 30)):
            sub = Subscriber(key=document.path, audience="reader", user_id=reviewer.pk)
            sub.opened_at = opened
            await hub.subscribe(sub)
            subs[name] = sub
        other = Subscriber(key=document.path, audience="reader", user_id=reviewer.pk + 1000)
        other.opened_at = at - 1
        await hub.subscribe(other)
        closed = hub.revoke(reviewer.pk, document.path, at)
        for task in hub.tasks:
            task.cancel()
        return closed, {name: sub.closed for name, sub in subs.items()}, other.closed

    closed, states, other_closed = asyncio.run(scenario())
    assert closed == 2 and states == {"before": True, "just_after": True, "well_after": False}
    assert not other_closed


def test_a_revocation_brought_by_its_broadcast_and_by_the_table_poll_is_applied_once(document, reviewer):
    async def scenario():
        hub = Hub()
        at = time.time()
        first = Subscriber(key=document.path, audience="reader", user_id=reviewer.pk)
        first.opened_at = at - 1
        await hub.subscribe(first)
        by_broadcast = hub.apply_revocation(7, reviewer.pk, document.path, at)
        # The client came back at once, within the slack; then the poll reads row 7.
        again = Subscriber(key=document.path, audience="reader", user_id=reviewer.pk)
        again.opened_at = at + 1
        await hub.subscribe(again)
        by_poll = hub.apply_revocation(7, reviewer.pk, document.path, at)
        later = hub.apply_revocation(8, reviewer.pk, document.path, at)  # another one closes it
        for task in hub.tasks:
            task.cancel()
        return by_broadcast, by_poll, later

    assert asyncio.run(scenario()) == (1, 0, 1)



def test_events_pruned_between_a_streams_reads_are_a_reset_never_a_silent_gap(document, reviewer):
    from realtime import log
    from realtime.models import Event

    make_events(document, reviewer, 6)
    # prune_events deleted 1..3 after the stream read the key's first kept id
    # (still 1 here) and before it read the rows.
    Event.objects.filter(stream__key=document.path, seq__lte=3).delete()
    replay = log.read_replay(document.path, after=1, limit=100, audience="reader")
    assert replay.reset and replay.frames == [] and replay.last_id == 6
    with pytest.raises(log.Pruned):
        log.read_frames(document.path, after=1, upto=6, audience="reader")
    # Reading on from a kept id is as before.
    assert [seq for seq, _ in log.read_frames(document.path, after=3, upto=6, audience="reader")] == [4, 5, 6]
    assert not log.read_replay(document.path, after=4, limit=100, audience="reader").reset
