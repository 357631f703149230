"""The per-process hub: one channel-layer channel for the whole process.

The hub joins a key's layer group when the first local stream of that key
opens and leaves it shortly after the last one closes.  Each event reaches the
process once; its frame is encoded once per audience and the same bytes are
handed to every local stream: written straight to an idle stream's connection
(``realtime.transport``), else appended to its buffer.  Nothing in the fan-out
loop awaits: a write never blocks, each stream drains its own bounded buffer,
and a slow client delays nobody.

Per key the hub delivers a gap-free sequence: an event whose predecessor has
not arrived (the layer is at-most-once) makes the hub read the missing events
from the table first.  A periodic resync does the same for events the layer
dropped silently, and keeps streams live from the table while the layer is
down.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import random
import time
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from . import log, metrics, presence, sse
from .groups import group_for
from .leases import get_store
from .models import Revocation
from .publish import CONTROL_GROUP, CONTROL_MESSAGE, EPHEMERAL_MESSAGE, EVENT_MESSAGE
from .subscriber import Subscriber
from .transport import chunk

logger = logging.getLogger(__name__)

# How long a key stays joined after its last local stream closes, so a
# reconnect does not pay for leaving and joining the group again.
LINGER_SECONDS = 5.0
TICK_SECONDS = 1.0
# A layer call that takes longer counts as the layer being down.
LAYER_TIMEOUT = 2.0
# A key whose events come closer together than this is busy: its events are
# coalesced (SSE_COALESCE_MS); a quiet key's event goes out at once.
BUSY_GAP_SECONDS = 0.05
# How long an event that arrived ahead of its predecessor waits for it before
# the hub reads the gap from the table.
GAP_WAIT_SECONDS = 0.02
# How long new streams of a key share one presence snapshot.
PRESENCE_BLOB_SECONDS = 1.0
# A stream closed (lifetime, revoked, shutdown) that has not ended this long
# after is stuck sending to a client that stopped reading: its connection is
# dropped.
CLOSE_GRACE_SECONDS = 5.0
# How long a revocation id skipped by the poll (not committed yet, or rolled
# back) is looked for again.
REVOCATION_GAP_SECONDS = 60.0
# A revocation also closes streams opened up to this long after its time:
# its row's time is taken at INSERT, before its transaction commits (an access
# check in between still saw the old access), and it comes from another
# host's clock.  A stream closed in that window reconnects and is checked again.
REVOCATION_SLACK_SECONDS = 5.0
# How long a stream may take from its access read to its registration (the
# lease's round trip included) and still be checked against the revocations
# applied meanwhile.
REVOCATION_WINDOW_SECONDS = 30.0
# The hub's background tasks (fills, ring reloads, group leaves): a task
# nobody references may be collected before it finishes.
_background: set[asyncio.Task] = set()


def _spawn(coro) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


class Topic:
    """The local streams of one key, by audience, and the last seq delivered."""

    __slots__ = ("key", "group", "audiences", "last_seq", "ready", "inbox", "filling", "linger",
                 "pending", "flush", "last_event_at", "rings", "ring_first", "first_kept", "ring_loading",
                 "ring_tail", "presence_blob", "presence_at", "presence_gen", "presence_fetch", "ring_divergent",
                 "ring_dirty", "last_push", "ring_times")

    def __init__(self, key: str) -> None:
        self.key = key
        self.group = group_for(key)
        self.audiences: dict[str, set[Subscriber]] = {}
        self.last_seq: int | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inbox: list[dict[str, Any]] = []
        self.filling = False
        self.linger: asyncio.TimerHandle | None = None
        # Coalescing: events held for one short window while the key is busy.
        self.pending: list[dict[str, Any]] = []
        self.flush: asyncio.TimerHandle | None = None
        self.last_event_at = 0.0
        # Replay ring: the key's recent frames as each audience sees them,
        # contiguous from ``ring_first`` to the last frame pushed.  None while
        # unusable (not loaded yet, or dropped because redaction changed).
        self.rings: dict[str, list[tuple[int, bytes]]] | None = None
        # When each entry's event was recorded (epoch seconds), in ring order.
        self.ring_times: list[float] = []
        self.ring_first = 0
        self.first_kept = 1
        self.ring_loading: asyncio.Future[None] | None = None
        self.ring_tail: list[tuple[int, dict[str, bytes]]] = []
        self.ring_divergent = 0  # entries whose frames differ between audiences (redacted)
        self.ring_dirty = False
        # The presence frames a new stream is sent, until presence changes
        # or PRESENCE_BLOB_SECONDS pass.
        self.presence_blob: bytes | None = None
        self.presence_at = 0.0
        self.presence_gen = 0
        self.presence_fetch: asyncio.Future[bytes] | None = None
        # When an event last went to every stream of the key (no heartbeat
        # is due on a stream that was written to since).
        self.last_push = 0.0

    def subscribers(self):
        for subs in self.audiences.values():
            yield from subs

    def __len__(self) -> int:
        return sum(len(subs) for subs in self.audiences.values())


def _ring_bounds() -> dict[str, Any]:
    """``log.read_recent``'s bounds for loading a replay ring (see ``Hub._ring_trim``)."""
    on = settings.SSE_REPLAY_RING > 0
    return {"limit": settings.SSE_REPLAY_RING, "seconds": settings.SSE_REPLAY_RING_SECONDS if on else 0.0,
            "most": settings.SSE_REPLAY_RING_MAX if on else 0}


def ring_audiences(first: str | None) -> list[str]:
    """The audiences a key's replay ring keeps frames for (SSE_REPLAY_RING
    events each, trimmed by a quarter at a time): every audience the policy
    names, and ``first`` if it names none."""
    from .access import policy

    known = list(getattr(policy(), "audiences", lambda: [])())
    if first is not None and first not in known:
        known.append(first)
    return known


class Hub:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.topics: dict[str, Topic] = {}
        self.membership = asyncio.Lock()
        self.started: asyncio.Future[None] | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.db_steps: dict[str, asyncio.Task] = {}  # the tick's database steps, running beside it
        self.layer_ok = True
        self.coalesce = settings.SSE_COALESCE_MS / 1000.0
        self.last_resync = time.monotonic()
        self.last_refresh = time.monotonic()
        self.last_renew = time.monotonic()
        self.last_sweep = time.monotonic()
        self.revocation_cursor: int | None = None
        self.revocations_applied: dict[int, float] = {}  # revocation id -> when (monotonic)
        # (when applied (monotonic), user id, key) of the last REVOCATION_WINDOW_SECONDS.
        self.recent_revocations: collections.deque = collections.deque()
        # Revocation ids above which the poll has moved but not seen yet: {id: since}.
        self.revocation_gaps: dict[int, float] = {}
        self.stopping = False
        from .gate import Gate

        self.gate = Gate()

    # -- lifecycle ---------------------------------------------------------

    async def ensure_started(self) -> None:
        if self.started is None:
            self.started = asyncio.get_running_loop().create_future()
            try:
                self.channel = await self.layer.new_channel("rt-hub.")
                self.revocation_cursor = await log.in_thread(_last_revocation_id)()
            except Exception as exc:  # noqa: BLE001
                self.started.set_exception(exc)
                self.started.exception()
                self.started = None
                raise
            try:
                await asyncio.wait_for(self.layer.group_add(CONTROL_GROUP, self.channel), LAYER_TIMEOUT)
            except Exception:  # noqa: BLE001 - revocations still come from the table
                self._layer_down("group_add control")
            # Everything loaded so far lives as long as the process: keep it out
            # of the collector's generations, so full collections stay short
            # with many streams open.
            gc.freeze()
            # Young collections a little less often than Python's default (700),
            # not much less: each write leaves ~140 objects in reference cycles
            # (DRF's request, view and serializer point at each other), and a
            # collection blocks the fan-out for as long as it walks them.  At
            # 1000 x 100 on a slow core, 20,000 meant 50-70 ms pauses and more
            # collector time in all than 2,000 (10-18 ms pauses).
            if settings.GC_GEN0_THRESHOLD > 0:
                gc.set_threshold(settings.GC_GEN0_THRESHOLD, 20, 50)
            self.tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._tick())]
            self.started.set_result(None)
        else:
            await asyncio.shield(self.started)

    def close_all(self, reason: str) -> None:
        """Close every local stream (graceful shutdown): clients reconnect elsewhere."""
        self.stopping = True
        for topic in list(self.topics.values()):
            for sub in list(topic.subscribers()):
                sub.close(reason)

    def pruned(self, key: str, first_kept: int) -> None:
        """Events of ``key`` before ``first_kept`` were deleted (``prune_events``):
        a stream asking for one of them gets ``stream.reset`` from this process
        as from any other, not a replay of what the ring still holds."""
        topic = self.topics.get(key)
        if topic is None or first_kept <= topic.first_kept:
            return
        topic.first_kept = first_kept
        if topic.rings is not None and first_kept > topic.ring_first:
            self._ring_cut(topic, first_kept - topic.ring_first)
            topic.ring_first = first_kept

    def apply_revocation(self, revocation_id: int | None, user_id: int | None, key: str | None,
                         at: float | None) -> int:
        """``revoke`` once per recorded revocation, whether its broadcast or the
        table poll brings it first: the second would close again the streams
        reopened within its slack."""
        if revocation_id is not None:
            if revocation_id in self.revocations_applied:
                return 0
            self.revocations_applied[revocation_id] = time.monotonic()
        return self.revoke(user_id, key, at)

    def revoke(self, user_id: int | None, key: str | None, at: float | None = None) -> int:
        """Close the user's local streams (on ``key``, or all) opened before ``at``
        (give or take ``REVOCATION_SLACK_SECONDS``).

        A stream opened well after the revocation was authorised after it, so it stays.
        """
        self.gate.evict(user_id, key)
        self.recent_revocations.append((time.monotonic(), user_id, key))
        closed = 0
        before = None if at is None else at + REVOCATION_SLACK_SECONDS
        topics = [self.topics[key]] if key and key in self.topics else ([] if key else list(self.topics.values()))
        for topic in topics:
            for sub in list(topic.subscribers()):
                if (user_id is None or sub.user_id == user_id) and not sub.closed and \
                        (before is None or sub.opened_at < before):
                    sub.close("revoked")
                    closed += 1
        return closed

    def stream_count(self) -> int:
        return sum(len(topic) for topic in self.topics.values())

    # -- membership --------------------------------------------------------

    async def subscribe(self, sub: Subscriber) -> None:
        """Register ``sub``; returns once its key's live events reach this process."""
        await self.ensure_started()
        topic = self.topics.get(sub.key)
        if topic is None:
            topic = Topic(sub.key)
            self.topics[sub.key] = topic
            try:
                await self._join(topic)
                recent = await log.in_thread(log.read_recent)(
                    sub.key, audiences=ring_audiences(sub.audience), **_ring_bounds())
                topic.last_seq = recent.last_id
                self._set_ring(topic, recent)
            except BaseException as exc:
                if self.topics.get(sub.key) is topic:
                    del self.topics[sub.key]
                if not topic.ready.done():
                    topic.ready.set_exception(exc)
                    topic.ready.exception()  # retrieved: the waiters re-raise it
                raise
            topic.ready.set_result(None)
            if topic.inbox:
                self._schedule_fill(topic)
        else:
            if topic.linger is not None:
                topic.linger.cancel()
                topic.linger = None
            await asyncio.shield(topic.ready)
            if topic.rings is None and topic.ring_loading is None and settings.SSE_REPLAY_RING > 0:
                self._ring_invalidate(topic)  # dropped while nobody was here: load it again
        topic.audiences.setdefault(sub.audience, set()).add(sub)
        metrics.STREAMS_OPEN.inc()
        if self.stopping:
            # Shutdown began while this stream was opening, after it closed
            # the streams registered then: this one ends too (it sends its
            # replay and stops; the client reconnects elsewhere).
            sub.close("shutdown")
        elif self._revoked_while_opening(sub):
            sub.close("revoked")

    def _revoked_while_opening(self, sub: Subscriber) -> bool:
        """Whether a revocation this process applied concerns ``sub``, which
        registered after it ran but whose access was read before it (a grant
        read or cached before, then the lease taken while it ran)."""
        recent = self.recent_revocations
        cutoff = time.monotonic() - REVOCATION_WINDOW_SECONDS
        while recent and recent[0][0] < cutoff:
            recent.popleft()
        return any((user_id is None or sub.user_id == user_id) and (not key or key == sub.key)
                   and sub.read_at < applied
                   for applied, user_id, key in recent)

    # -- replay ring -----------------------------------------------------------

    @staticmethod
    def _set_ring(topic: Topic, recent: log.Recent) -> None:
        topic.first_kept = recent.first_kept
        topic.ring_first = recent.first
        topic.rings = {aud: list(frames) for aud, frames in recent.frames.items()}
        topic.ring_times = list(recent.times)
        rings = list(topic.rings.values())
        topic.ring_divergent = sum(1 for entries in zip(*rings) if len({data for _, data in entries}) > 1) \
            if len(rings) > 1 else 0

    @staticmethod
    def _ring_last(topic: Topic) -> int:
        for frames in topic.rings.values():
            return frames[-1][0] if frames else topic.ring_first - 1
        return topic.ring_first - 1

    def _frame_for(self, frames: dict[str, bytes] | None, message, aud: str) -> bytes | None:
        data = frames.get(aud) if frames is not None else None
        if data is None and message is not None:
            data = self._encode(message, aud)
        return data

    def _ring_add(self, topic: Topic, seq: int, event: str, frames: dict[str, bytes] | None, message=None) -> None:
        """Add event ``seq`` (delivered in order) to the replay ring, one frame per audience.

        Frames are redacted as of their reading, so an event that can change how
        earlier events look to some audience (a hide or deletion: its frames
        differ between audiences; or any update while the ring holds such
        frames, which may be an unhide) makes the ring reload once from the table."""
        auds = ring_audiences(None)
        mine = {aud: self._frame_for(frames, message, aud) for aud in auds}
        divergent = len(set(mine.values())) > 1
        changes = divergent or event.endswith(".deleted") or (topic.ring_divergent > 0 and event.endswith(".updated"))
        rings = topic.rings
        if rings is None:
            if topic.ring_loading is not None:
                topic.ring_tail.append((seq, mine))
                if changes:
                    topic.ring_dirty = True
            return
        last = self._ring_last(topic)
        if seq <= last:
            return
        if seq != last + 1 or None in mine.values() or set(rings) != set(mine):
            self._ring_invalidate(topic)  # a jump: replay from the table until reloaded
            return
        for aud, ring in rings.items():
            ring.append((seq, mine[aud]))
        now = time.time()
        topic.ring_times.append(now)
        topic.ring_divergent += divergent
        ring0 = next(iter(rings.values()))
        self._ring_trim(topic, len(ring0), now)
        topic.ring_first = ring0[0][0]
        if changes:
            self._ring_invalidate(topic)

    def _ring_trim(self, topic: Topic, size: int, now: float) -> None:
        """Keep the last SSE_REPLAY_RING entries, and older ones recorded in the
        last SSE_REPLAY_RING_SECONDS, SSE_REPLAY_RING_MAX at most: a reconnect
        storm after a restart asks for the seconds the process was away, which
        on a busy document are more events than on a quiet one.  Cut a quarter
        of SSE_REPLAY_RING at a time, not one entry per event."""
        keep = max(settings.SSE_REPLAY_RING, 1)
        most = max(settings.SSE_REPLAY_RING_MAX, keep) if settings.SSE_REPLAY_RING > 0 else keep
        slack = max(keep // 4, 1)
        if size <= keep + slack:
            return
        times, cutoff = topic.ring_times, now - settings.SSE_REPLAY_RING_SECONDS
        old = 0
        while old < size - keep and times[old] < cutoff:
            old += 1
        count = max(old, size - most)
        if count >= slack:
            self._ring_cut(topic, count)

    @staticmethod
    def _ring_cut(topic: Topic, count: int) -> None:
        """Drop the ring's ``count`` oldest entries (the caller sets ``ring_first``)."""
        rings = topic.rings.values()
        cut = [ring[:count] for ring in rings]
        topic.ring_divergent -= sum(1 for entries in zip(*cut) if len({d for _, d in entries}) > 1)
        for ring in rings:
            del ring[:count]
        del topic.ring_times[:count]

    def _ring_invalidate(self, topic: Topic) -> None:
        """What an audience may see of past events changed: reload the ring once."""
        topic.rings = None
        if topic.ring_loading is None:
            topic.ring_loading = asyncio.get_running_loop().create_future()
            topic.ring_tail = []
            topic.ring_dirty = False
            _spawn(self._ring_reload(topic))
        else:
            topic.ring_dirty = True

    async def _ring_reload(self, topic: Topic) -> None:
        try:
            while True:
                topic.ring_dirty = False
                # The last SSE_REPLAY_RING only: a reload follows a hide or a
                # deletion, which a busy document may see every second.
                recent = await log.in_thread(log.read_recent)(topic.key, limit=settings.SSE_REPLAY_RING,
                                                              audiences=ring_audiences(None))
                if topic.ring_dirty:
                    # Something changed redaction during the read: read again
                    # (the tail gathered so far stays useful).
                    continue
                tail = [(seq, f) for seq, f in topic.ring_tail if seq > recent.last_id]
                expected = recent.last_id + 1
                if all(seq == expected + i and None not in f.values() for i, (seq, f) in enumerate(tail)):
                    self._set_ring(topic, recent)
                    now = time.time()
                    for seq, frames in tail:
                        for aud, ring in topic.rings.items():
                            ring.append((seq, frames[aud]))
                        topic.ring_times.append(now)
                        topic.ring_divergent += len(set(frames.values())) > 1
                break
        except Exception:  # noqa: BLE001 - replay falls back to the table
            logger.warning("replay ring reload failed for %s", topic.key, exc_info=True)
        finally:
            waiter, topic.ring_loading, topic.ring_tail = topic.ring_loading, None, []
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def replay(self, sub: Subscriber, after: int | None, limit: int) -> log.Replay | None:
        """The replay of a stream that just subscribed, from the ring; None: read the table.

        Synchronous once the ring is there, and ``sub`` is already registered,
        so live events after the ring's last frame reach ``sub`` and nothing
        before it does twice."""
        topic = self.topics.get(sub.key)
        if topic is None or settings.SSE_REPLAY_RING <= 0:
            return None
        if topic.rings is None and topic.ring_loading is not None:
            await asyncio.shield(topic.ring_loading)
        rings = topic.rings
        if rings is None or sub.audience not in rings:
            return None
        ring = rings[sub.audience]
        last = ring[-1][0] if ring else topic.ring_first - 1
        first = topic.ring_first
        if after is None:
            after = max(last - limit, topic.first_kept - 1, 0)
            if after < first - 1:
                return None
        elif after > last or after < first - 1 or after < topic.first_kept - 1:
            return None  # ahead of this hub, older than the ring or pruned: the table decides
        frames = ring[after + 1 - first:] if after + 1 >= first else ring
        return log.Replay(last_id=last, frames=frames)

    async def presence_frames(self, key: str) -> bytes:
        """The ``user.presence`` online frames a new stream of ``key`` is sent:
        made once and reused for streams opened within PRESENCE_BLOB_SECONDS
        (a reconnect storm shares one fetch) or until a presence announcement
        passes (``_on_ephemeral`` drops them).  Not longer: a user who
        reconnects within the offline grace is never announced again, and a
        snapshot taken during their gap would leave them out."""
        topic = self.topics.get(key)
        if topic is None:
            return await _presence_snapshot(key)
        if topic.presence_blob is not None and time.monotonic() - topic.presence_at < PRESENCE_BLOB_SECONDS:
            return topic.presence_blob
        if topic.presence_fetch is not None:
            return await asyncio.shield(topic.presence_fetch)
        fetch = topic.presence_fetch = asyncio.get_running_loop().create_future()
        gen = topic.presence_gen
        frames = b""
        try:
            frames = await _presence_snapshot(key)
            if topic.presence_gen == gen:
                topic.presence_blob = frames
                topic.presence_at = time.monotonic()
        finally:
            topic.presence_fetch = None
            fetch.set_result(frames)
        return frames

    def unsubscribe(self, sub: Subscriber) -> None:
        topic = self.topics.get(sub.key)
        if topic is None:
            return
        subs = topic.audiences.get(sub.audience)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        metrics.STREAMS_OPEN.dec()
        if not subs:
            del topic.audiences[sub.audience]
        if not topic.audiences and topic.linger is None:
            topic.linger = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._leave, topic)

    async def _join(self, topic: Topic) -> None:
        try:
            async with self.membership:
                await asyncio.wait_for(self.layer.group_add(topic.group, self.channel), LAYER_TIMEOUT)
        except Exception:  # noqa: BLE001 - the table still serves the stream
            self._layer_down("group_add")

    def _leave(self, topic: Topic) -> None:
        topic.linger = None
        if topic.audiences or self.topics.get(topic.key) is not topic:
            return
        del self.topics[topic.key]
        _spawn(self._discard(topic.key, topic.group))

    async def _discard(self, key: str, group: str) -> None:
        async with self.membership:
            if key in self.topics:  # re-joined meanwhile: keep the membership
                return
            try:
                await asyncio.wait_for(self.layer.group_discard(group, self.channel), LAYER_TIMEOUT)
            except Exception:  # noqa: BLE001 - expires by itself (group_expiry)
                logger.info("group_discard failed for %s", key, exc_info=True)

    # -- receiving -----------------------------------------------------------

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                logger.debug("layer receive failed", exc_info=True)
                self._layer_down("receive")
                await asyncio.sleep(backoff + random.random() * backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            try:
                self.dispatch(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop the hub
                logger.exception("hub failed to dispatch a message")

    def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == CONTROL_MESSAGE:
            if message.get("action") == "revoke":
                self.apply_revocation(message.get("id"), message["user_id"], message.get("key"), message.get("at"))
            elif message.get("action") == "pruned":
                self.pruned(message["key"], message["first_kept"])
            return
        topic = self.topics.get(message.get("key", ""))
        if topic is None:
            return
        kind = message.get("type")
        if kind == EVENT_MESSAGE:
            self._on_event(topic, message)
        elif kind == EPHEMERAL_MESSAGE:
            self._on_ephemeral(topic, message)

    def _on_ephemeral(self, topic: Topic, message: dict[str, Any]) -> None:
        """Frames without an id (presence, typing, cursor), each encoded once.

        A batch (``items``: presence changes coalesced by the announcing
        process) reaches each stream with one wake-up."""
        if message.get("event") == "user.presence" or any(
                item.get("event") == "user.presence" for item in message.get("items") or ()):
            topic.presence_blob = None
            topic.presence_gen += 1
        items = message.get("items") or [message]
        frames = [(sse.frame(event=item["event"], data=item["payload"]), item.get("exclude_user")) for item in items]
        if len(frames) == 1:
            data, exclude = frames[0]
            item, wire = (None, data), chunk(data)
            for sub in topic.subscribers():
                if exclude is None or sub.user_id != exclude:
                    sub.push_item(item, wire)
            return
        # One joined frame for everyone, and one per user excluded from an
        # item (their own typing or cursor): shared bytes, nothing per stream.
        excluded = {exclude for _, exclude in frames if exclude is not None}
        everyone = (None, b"".join(data for data, _ in frames))
        everyone_wire = chunk(everyone[1])
        # Per user: the item and its HTTP chunk, shared by the user's streams.
        variants: dict[int, tuple[tuple[None, bytes], bytes] | None] = {}
        for sub in topic.subscribers():
            if sub.user_id not in excluded:
                sub.push_item(everyone, everyone_wire)
                continue
            if sub.user_id not in variants:
                data = b"".join(d for d, exclude in frames if exclude != sub.user_id)
                variants[sub.user_id] = ((None, data), chunk(data)) if data else None
            variant = variants[sub.user_id]
            if variant is not None:
                sub.push_item(*variant)

    def _on_event(self, topic: Topic, message: dict[str, Any]) -> None:
        if topic.last_seq is None or topic.filling or topic.inbox:
            topic.inbox.append(message)
            if topic.last_seq is not None:
                self._schedule_fill(topic)
            return
        seq = message["seq"]
        if seq <= topic.last_seq:
            return
        if seq == topic.last_seq + 1:
            self._deliver(topic, message)
        else:
            # Out of order: with several processes publishing, the missing
            # event is usually a few milliseconds behind.  Wait that long
            # before reading the table for it.
            topic.inbox.append(message)
            self._schedule_fill(topic, delay=GAP_WAIT_SECONDS)

    def _deliver(self, topic: Topic, message: dict[str, Any]) -> None:
        """Deliver the next event of ``topic``: now when the key is quiet; when
        it is busy, with the others of a window of at most ``SSE_COALESCE_MS``,
        so each stream is woken and written to once per window, not per event."""
        topic.last_seq = message["seq"]
        now = time.monotonic()
        busy = self.coalesce > 0 and (topic.pending or now - topic.last_event_at < BUSY_GAP_SECONDS)
        topic.last_event_at = now
        if not busy:
            self._push(topic, [message])
            return
        topic.pending.append(message)
        if topic.flush is None:
            topic.flush = asyncio.get_running_loop().call_later(self.coalesce, self._flush, topic)

    def _flush(self, topic: Topic) -> None:
        if topic.flush is not None:
            topic.flush.cancel()
            topic.flush = None
        batch, topic.pending = topic.pending, []
        if batch:
            self._push(topic, batch)

    def _push(self, topic: Topic, batch: list[dict[str, Any]]) -> None:
        """Encode each event once per audience and queue the same bytes to every stream."""
        for message in batch:
            self._ring_add(topic, message["seq"], message.get("event", ""), None, message)
        count = 0
        for audience, subs in topic.audiences.items():
            if not subs:
                continue
            items = []
            size = 0
            for message in batch:
                data = message.get("_frames", {}).get(audience)
                if data is None:
                    data = self._encode(message, audience)
                items.append((message["seq"], data))
                size += len(data)
            # The same bytes as one HTTP chunk, for the streams written to
            # directly (``Subscriber.push_item``).
            wire = chunk(items[0][1] if len(items) == 1 else b"".join(data for _, data in items))
            if len(items) == 1:
                item = items[0]
                for sub in subs:
                    sub.push_item(item, wire)
            else:
                for sub in subs:
                    sub.push_many(items, size, wire)
            count += len(subs)
        topic.last_push = time.monotonic()
        metrics.EVENTS_DELIVERED.inc(count * len(batch))
        now = time.time()
        for message in batch:
            sent = message.get("sent")
            if sent:
                metrics.DELIVERY_LATENCY.observe(max(0.0, now - sent))

    @staticmethod
    def _encode(message: dict[str, Any], audience: str) -> bytes:
        frames = message.setdefault("_frames", {})
        variant = (message.get("variants") or {}).get(audience)
        if variant is not None:
            data = sse.frame(id=message["seq"], event=variant[0], data=variant[1])
        else:
            data = frames.get("") or sse.frame(id=message["seq"], event=message["event"], data=message["payload"])
            frames[""] = data
        frames[audience] = data
        return data

    def _deliver_rows(self, topic: Topic, rows: list[tuple[int, str, dict[str, bytes]]]) -> None:
        """Deliver events read from the table (contiguous from ``last_seq + 1``)
        as one batch: each stream gets them in one write, not one per event."""
        self._flush(topic)  # what is held back goes first: order is kept
        for seq, event, frames in rows:
            self._ring_add(topic, seq, event, frames)
        count = 0
        for audience, subs in topic.audiences.items():
            # An audience that joined during the read has no frames: its
            # streams replayed from the table themselves.
            items = [(seq, frames[audience]) for seq, _, frames in rows if audience in frames]
            if not items or not subs:
                continue
            if len(items) != len(rows):
                for sub in subs:
                    for item in items:
                        sub.push_item(item)
            else:
                size = sum(len(data) for _, data in items)
                wire = chunk(b"".join(data for _, data in items))
                for sub in subs:
                    sub.push_many(items, size, wire)
            count += len(subs) * len(items)
        topic.last_push = time.monotonic()
        topic.last_seq = rows[-1][0]
        metrics.EVENTS_DELIVERED.inc(count)

    # -- filling gaps from the table ----------------------------------------

    def _schedule_fill(self, topic: Topic, delay: float = 0.0) -> None:
        if not topic.filling and topic.last_seq is not None:
            topic.filling = True
            if delay:
                asyncio.get_running_loop().call_later(delay, lambda: _spawn(self._fill(topic)))
            else:
                _spawn(self._fill(topic))

    def _drain_inbox(self, topic: Topic) -> bool:
        """Deliver queued messages that are next in line; True if a gap remains."""
        topic.inbox.sort(key=lambda m: m["seq"])
        while topic.inbox:
            message = topic.inbox[0]
            seq = message["seq"]
            if seq <= topic.last_seq:
                topic.inbox.pop(0)
            elif seq == topic.last_seq + 1:
                topic.inbox.pop(0)
                self._deliver(topic, message)
            else:
                return True
        return False

    async def _fill(self, topic: Topic, *, upto: int | None = None) -> None:
        """Read what is missing from the table until the topic is contiguous."""
        try:
            for _ in range(1000):  # bounded: each pass reads up to log.CHUNK rows
                gap = self._drain_inbox(topic)
                behind = upto is not None and topic.last_seq < upto
                if not gap and not behind:
                    return
                if not topic.audiences:
                    # Nobody to deliver to: jump ahead; a new stream replays itself.
                    newest = max([m["seq"] for m in topic.inbox] + [upto or 0])
                    topic.last_seq = max(topic.last_seq, newest)
                    topic.inbox.clear()
                    topic.rings = None
                    return
                rows = await log.in_thread(log.read_for_audiences)(
                    topic.key, after=topic.last_seq,
                    audiences=list(set(topic.audiences) | set(ring_audiences(None))),
                )
                if not rows:
                    return  # not visible yet; the next resync retries
                metrics.GAP_FILLS.inc()
                run = []
                for row in rows:
                    if row[0] == topic.last_seq + 1 + len(run):
                        run.append(row)
                    elif row[0] > topic.last_seq + len(run):
                        break
                if run:
                    self._deliver_rows(topic, run)
        except Exception:  # noqa: BLE001 - database down: the next resync retries
            logger.warning("gap fill failed for %s", topic.key, exc_info=True)
        finally:
            topic.filling = False

    # -- periodic work -------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self._tick_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                logger.warning("hub tick failed", exc_info=True)

    async def _tick_once(self) -> None:
        now = time.monotonic()
        # First what needs no I/O, so heartbeats go out even with the
        # database and the layer both down.
        idle = settings.SSE_HEARTBEAT_SECONDS
        for topic in list(self.topics.values()):
            for sub in list(topic.subscribers()):
                if sub.closed:
                    # Still here: its coroutine is stuck in a send to a
                    # client that stopped reading (uvicorn waits for the
                    # buffer to drain).  Dropping the connection frees it.
                    if now - sub.closed_at >= CLOSE_GRACE_SECONDS:
                        sub.outbox.abort()
                elif sub.outbox.closed():
                    sub.close("client_gone")
                elif sub.deadline is not None and now >= sub.deadline:
                    sub.close("lifetime")
                elif now - max(sub.last_write, topic.last_push) >= idle:
                    sub.push(None, sse.PING)
                    sub.last_write = now
        # The database's steps run beside the tick: a database that hangs
        # (rather than refusing) must not hold back pings, the lease store's
        # heartbeat and renewals, nor the presence sweep.
        self._beside("revocation poll", self._poll_revocations)
        await self._guard("heartbeat", get_store().heartbeat())
        self.gate.sweep()
        if now - self.last_renew >= settings.SSE_LEASE_TTL_SECONDS / 3:
            self.last_renew = now
            await self._guard("lease renewal", self._renew_leases())
        if now - self.last_sweep >= settings.SSE_PRESENCE_SWEEP_SECONDS:
            self.last_sweep = now
            for key in list(self.topics):
                if not await self._guard("presence sweep", presence.sweep(key)):
                    break
        interval = settings.SSE_RESYNC_SECONDS if self.layer_ok else TICK_SECONDS
        if now - self.last_resync >= interval and self._beside("resync", self.resync):
            self.last_resync = now
        expiry = getattr(self.layer, "group_expiry", 86400)
        if not self.layer_ok or now - self.last_refresh >= expiry / 3:
            self.last_refresh = now
            if await self._refresh_groups() and not self.layer_ok:
                self._layer_up()

    def _beside(self, what: str, step) -> bool:
        """Start ``step()`` as a task unless the last one is still running
        (waiting on the database); True if started."""
        running = self.db_steps.get(what)
        if running is not None and not running.done():
            return False
        task = asyncio.get_running_loop().create_task(self._guard(what, step()))
        self.db_steps[what] = task
        return True

    @staticmethod
    async def _guard(what: str, step) -> bool:
        """Run one periodic step; a failure is logged and the others still run."""
        try:
            await step
            return True
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            logger.warning("hub %s failed", what, exc_info=True)
            return False

    async def _poll_revocations(self) -> None:
        """Apply the revocations recorded since the last poll (the fallback
        when the layer lost their broadcast).

        Ids are handed out at INSERT and commit in any order: an id below the
        newest one seen may commit later.  Skipped ids are looked for again
        for REVOCATION_GAP_SECONDS (a rolled-back one never appears).
        Each revocation is applied once (``apply_revocation``), by its
        broadcast or by this poll, whichever comes first.
        """
        if self.revocation_cursor is None:
            return
        now = time.monotonic()
        gaps = self.revocation_gaps
        for row_id in [row_id for row_id, since in gaps.items() if now - since > REVOCATION_GAP_SECONDS]:
            del gaps[row_id]
        rows = await log.in_thread(_revocations_after)(self.revocation_cursor, list(gaps))
        for row_id, user_id, key, created_at in rows:
            if row_id > self.revocation_cursor:
                for missing in range(max(self.revocation_cursor + 1, row_id - 1000), row_id):
                    gaps.setdefault(missing, now)
                self.revocation_cursor = row_id
            else:
                gaps.pop(row_id, None)
            self.apply_revocation(row_id, user_id, key or None, created_at.timestamp())
        applied = self.revocations_applied
        for row_id in [row_id for row_id, since in applied.items() if now - since > 2 * REVOCATION_GAP_SECONDS]:
            del applied[row_id]

    async def _renew_leases(self) -> None:
        leases = [sub.lease for topic in self.topics.values() for sub in topic.subscribers() if sub.lease]
        try:
            await get_store().renew(leases)
        except Exception:  # noqa: BLE001 - retried next time; TTL is 3 renewals long
            logger.warning("lease renewal failed for %d streams", len(leases), exc_info=True)

    async def resync(self) -> None:
        """Compare every local key with the table and fill what is missing."""
        topics = [t for t in self.topics.values() if t.last_seq is not None]
        if not topics:
            return
        current = await log.in_thread(log.last_ids)([t.key for t in topics])
        for topic in topics:
            newest, first_kept = current.get(topic.key, (0, 1))
            self.pruned(topic.key, first_kept)
            if newest > topic.last_seq and not topic.filling:
                topic.filling = True
                _spawn(self._fill(topic, upto=newest))

    async def _refresh_groups(self) -> bool:
        """Renew every membership (channels-redis forgets one after group_expiry,
        and a restarted Redis forgets them all).  False if the layer failed."""
        try:
            await asyncio.wait_for(self.layer.group_add(CONTROL_GROUP, self.channel), LAYER_TIMEOUT)
            for topic in list(self.topics.values()):
                async with self.membership:
                    if self.topics.get(topic.key) is topic:
                        await asyncio.wait_for(self.layer.group_add(topic.group, self.channel), LAYER_TIMEOUT)
        except Exception:  # noqa: BLE001
            self._layer_down("group_refresh")
            return False
        return True

    def _layer_down(self, where: str) -> None:
        if self.layer_ok:
            logger.warning("channel layer unavailable (%s): streams follow the event table", where)
        self.layer_ok = False
        metrics.FALLBACK_MODE.set(1)

    def _layer_up(self) -> None:
        logger.info("channel layer back: streams follow the layer again")
        self.layer_ok = True
        metrics.FALLBACK_MODE.set(0)


def _last_revocation_id() -> int:
    return Revocation.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _revocations_after(cursor: int, gaps: list[int] = ()) -> list[tuple[int, int, str, Any]]:
    """Revocations after ``cursor`` (oldest first, at most 1000) and those
    with the ``gaps`` ids that have committed since."""
    rows = list(Revocation.objects.filter(id__gt=cursor).order_by("id")
                .values_list("id", "user_id", "key", "created_at")[:1000])
    if gaps:
        rows[:0] = Revocation.objects.filter(id__in=gaps).order_by("id").values_list("id", "user_id", "key",
                                                                                   "created_at")
    return rows


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def get_hub() -> Hub:
    """The hub of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub


async def _presence_snapshot(key: str) -> bytes:
    try:
        online = await presence.snapshot(key)
    except Exception:  # noqa: BLE001 - presence is best effort
        logger.warning("presence snapshot failed for %s", key, exc_info=True)
        online = []
    return b"".join(presence.presence_frame(key, uid, name, presence.ONLINE) for uid, name in online)
