"""Reading the event log: replay on connect and gap fills for the hub.

Synchronous functions, called from async code through ``in_thread`` so no
connection is held across awaits.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from . import envelope
from .access import EventView, policy
from .models import Event, Stream

# Rows read per query while replaying or filling, to bound memory.
CHUNK = 500

# The stream's and the hub's reads run in a small executor of their own
# (SSE_DB_THREADS), not on the single thread Django's sync views share
# (thread_sensitive): a reconnect storm reads in parallel instead of queueing
# behind requests.  Its threads live as long as the process and keep their
# connections, which Django closes as it would after a request: past
# CONN_MAX_AGE, after an error that left them unusable, or with a transaction
# left open.
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _stream_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=settings.SSE_DB_THREADS, thread_name_prefix="rt-db")
    return _executor


def in_thread(fn):
    """``fn`` as a coroutine function run on the stream executor."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False, executor=_stream_executor())


def last_id(key: str) -> int:
    """The last sequence number issued for ``key`` (0 when none)."""
    return Stream.objects.filter(key=key).values_list("last_id", flat=True).first() or 0


def last_ids(keys: list[str]) -> dict[str, tuple[int, int]]:
    """(last sequence number, first one kept) of many keys in one query."""
    found = {key: (last, first) for key, last, first in
             Stream.objects.filter(key__in=keys).values_list("key", "last_id", "first_kept_id")}
    return {key: found.get(key, (0, 1)) for key in keys}


def _rows(key: str, after: int, upto: int | None, limit: int) -> list[Event]:
    qs = Event.objects.filter(stream__key=key, seq__gt=after)
    if upto is not None:
        qs = qs.filter(seq__lte=upto)
    return list(qs.order_by("seq").only("seq", "type", "data", "created_at")[:limit])


def _frames(key: str, audience: str, rows: list[Event]) -> list[tuple[int, bytes]]:
    at = {row.seq: row.created_at for row in rows}
    views = policy().redact(audience, key, [EventView(row.seq, row.type, row.data) for row in rows])
    return [
        (view.seq, envelope.encode(key=key, seq=view.seq, type=view.type, data=view.data, at=at[view.seq]))
        for view in views
    ]


@dataclass
class Replay:
    """What a new stream sends before going live."""

    last_id: int  # the key's last id when read; live frames up to it are dropped
    reset: bool = False
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    more: bool = False  # frames stop before last_id: read on with ``read_frames``


def read_replay(key: str, *, after: int | None, limit: int, audience: str) -> Replay:
    """The replay of a stream connecting with Last-Event-ID ``after`` (None: none sent).

    With no id, the last ``limit`` events.  An id greater than the last one, or
    one whose successors are no longer kept, answers ``reset``.
    """
    stream = Stream.objects.filter(key=key).values("last_id", "first_kept_id").first()
    current = stream["last_id"] if stream else 0
    first_kept = stream["first_kept_id"] if stream else 1
    if after is None:
        after = max(current - limit, first_kept - 1, 0)
    elif after > current or after < first_kept - 1:
        return Replay(last_id=current, reset=True)
    rows = _rows(key, after, current, CHUNK)
    if (rows[0].seq if rows else current + 1) != after + 1 and after < current:
        # ``prune_events`` deleted the next events between the two reads.
        return Replay(last_id=current, reset=True)
    frames = _frames(key, audience, rows)
    more = bool(rows) and rows[-1].seq < current
    return Replay(last_id=current, frames=frames, more=more)


class Pruned(Exception):
    """The events a stream needs next were deleted (``prune_events``) while it read them."""


def read_frames(key: str, *, after: int, upto: int | None, audience: str) -> list[tuple[int, bytes]]:
    """Frames of the events after ``after`` (up to ``upto``), at most ``CHUNK``.
    Raises ``Pruned`` when the next of them is gone: the stream must not skip it."""
    rows = _rows(key, after, upto, CHUNK)
    if rows and rows[0].seq != after + 1:
        raise Pruned(key)
    return _frames(key, audience, rows)


def read_for_audiences(key: str, *, after: int,
                       audiences: list[str]) -> list[tuple[int, str, dict[str, bytes]]]:
    """Events after ``after`` (seq, type, frame per audience), for a hub's gap fill."""
    rows = _rows(key, after, None, CHUNK)
    if not rows:
        return []
    per_audience = {aud: dict(_frames(key, aud, rows)) for aud in audiences}
    return [(row.seq, row.type, {aud: frames[row.seq] for aud, frames in per_audience.items()}) for row in rows]


@dataclass
class Recent:
    """The tail of a key's log, encoded per audience: a hub's replay ring."""

    last_id: int
    first_kept: int
    first: int  # seq of the first frame (last_id + 1 when none)
    frames: dict[str, list[tuple[int, bytes]]]
    times: list[float]  # when each event was recorded (epoch seconds), one per frame


def read_recent(key: str, *, limit: int, audiences: list[str], seconds: float = 0.0, most: int = 0) -> Recent:
    """The tail of ``key``'s log, one encoding per audience: its last ``limit``
    events, and any older ones recorded in the last ``seconds``, ``most`` at most."""
    stream = Stream.objects.filter(key=key).values("last_id", "first_kept_id").first()
    current = stream["last_id"] if stream else 0
    first_kept = stream["first_kept_id"] if stream else 1
    after = max(current - max(limit, most), first_kept - 1, 0)
    qs = Event.objects.filter(stream__key=key, seq__gt=after, seq__lte=current)
    if most > limit and seconds > 0:
        recent_enough = timezone.now() - timedelta(seconds=seconds)
        qs = qs.filter(Q(seq__gt=current - limit) | Q(created_at__gte=recent_enough))
    else:
        qs = qs.filter(seq__gt=current - limit)
    rows = list(qs.order_by("seq").only("seq", "type", "data", "created_at"))
    # Keep the run that ends at ``current`` (recording times are not strictly
    # in sequence order, so the time filter may leave a hole further back).
    start = len(rows)
    while start > 0 and rows[start - 1].seq == current - (len(rows) - start):
        start -= 1
    rows = rows[start:]
    if not rows or rows[-1].seq != current or rows[0].seq > max(current - limit + 1, first_kept, 1):
        return Recent(current, first_kept, current + 1, {aud: [] for aud in audiences}, [])
    return Recent(current, first_kept, rows[0].seq, {aud: _frames(key, aud, rows) for aud in audiences},
                  [row.created_at.timestamp() for row in rows])
