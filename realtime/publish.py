"""Recording events with the change that caused them, and publishing them
after commit.

``record`` writes the event row inside the caller's transaction, taking the
key's next sequence number under a row lock, so sequence numbers follow
commit order with no gap.  The channel-layer message is sent only once the
transaction commits; a rollback sends nothing.  The layer is a fast path that
may drop messages: the table is the truth, and every hub fills gaps from it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from docreview.prepared import PreparedInsert

from . import envelope, metrics, sse
from .groups import group_for
from .models import Event, Revocation, Stream

logger = logging.getLogger(__name__)

EVENT_MESSAGE = "realtime.event"
EPHEMERAL_MESSAGE = "realtime.ephemeral"
CONTROL_MESSAGE = "realtime.control"
# Every hub joins this group: revocations reach every process.
CONTROL_GROUP = "rt.control"
# A layer that does not answer within this is treated as down for this publish.
PUBLISH_TIMEOUT = 2.0


def _roundtrip(payload: Any) -> Any:
    # Fail here, where the payload is made, not later in an on-commit callback.
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def ensure_stream(key: str) -> Stream:
    """The Stream row of ``key``, created if missing (safe under concurrency)."""
    stream = Stream.objects.filter(key=key).first()
    if stream is not None:
        return stream
    try:
        with transaction.atomic():
            return Stream.objects.create(key=key)
    except IntegrityError:
        return Stream.objects.get(key=key)


# Every write inserts one event row: its INSERT is compiled once, not per
# write (the Event model has no signal receivers).
_EVENT_INSERT = PreparedInsert(Event, ["stream", "seq", "type", "data", "created_at"])


def _next_seq(connection, key: str) -> tuple[int, int] | None:
    """Take ``key``'s next sequence number: (stream id, seq), or None if no row.

    One statement that increments and returns, holding the row's lock until
    the transaction ends, so numbers are issued in commit order with no gap.
    (PostgreSQL and SQLite 3.35+ both have UPDATE ... RETURNING.)
    """
    table = connection.ops.quote_name(Stream._meta.db_table)
    last, key_column = connection.ops.quote_name("last_id"), connection.ops.quote_name("key")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {last} = {last} + 1 WHERE {key_column} = %s RETURNING id, {last}", [key])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def record(
    *,
    key: str,
    type: str,
    data: Any,
    variants: dict[str, tuple[str, Any]] | None = None,
) -> Event:
    """Record an event of ``key`` in the current transaction; publish it on commit.

    ``variants`` maps an audience to the ``(type, data)`` it sees instead of the
    event itself (a hidden comment reaches ordinary readers as a deletion).
    Must be called inside ``transaction.atomic``.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("realtime.publish.record() must run inside transaction.atomic")
    data = _roundtrip(data)
    variants = {aud: (vtype, _roundtrip(vdata)) for aud, (vtype, vdata) in (variants or {}).items()}

    issued = _next_seq(connection, key)
    if issued is None:
        ensure_stream(key)
        issued = _next_seq(connection, key)
    stream_id, seq = issued
    event = _EVENT_INSERT.insert(stream_id=stream_id, seq=seq, type=type, data=data, created_at=timezone.now())

    message = {
        "type": EVENT_MESSAGE,
        "key": key,
        "seq": event.seq,
        "event": type,
        "payload": sse.dumps(
            envelope.envelope(key=key, seq=event.seq, type=type, data=data, at=event.created_at)
        ),
        "variants": {
            aud: [
                vtype,
                sse.dumps(envelope.envelope(key=key, seq=event.seq, type=vtype, data=vdata, at=event.created_at)),
            ]
            for aud, (vtype, vdata) in variants.items()
        },
        "sent": time.time(),
    }
    transaction.on_commit(lambda: broadcast(key, message))
    return event


async def _send_bounded(group: str, message: dict[str, Any]) -> None:
    await asyncio.wait_for(get_channel_layer().group_send(group, message), timeout=PUBLISH_TIMEOUT)


# The event loop of the server process (daphne's or uvicorn's), set by the
# ASGI entry point.  A request's sync work runs on another thread; it hands
# each publish to this loop and returns at once, instead of blocking its
# thread (and every request queued behind it) until the loop gets round to it.
_server_loop: asyncio.AbstractEventLoop | None = None
_in_flight: set[asyncio.Task] = set()


def bind_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def _hand_off(group: str, message: dict[str, Any]) -> bool:
    """Schedule the publish on the server's loop; False if there is none to use."""
    loop = _server_loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return False
    try:
        if asyncio.get_running_loop() is loop:
            task = loop.create_task(abroadcast(group, message))
            _in_flight.add(task)
            task.add_done_callback(_in_flight.discard)
            return True
    except RuntimeError:
        pass  # no loop in this thread: the usual case
    asyncio.run_coroutine_threadsafe(abroadcast(group, message), loop)
    return True


def broadcast(key: str, message: dict[str, Any]) -> bool:
    """Hand ``message`` to every process that has ``key`` open.

    Never raises: a failed publish is logged and counted; the event is in the
    table and every hub's resync delivers it.  Inside a server process the
    publish is handed to the server's loop and this returns at once (True
    means handed off); elsewhere (a management command, the shell) it is sent
    before returning.  Each hub puts a key's events back in sequence order.
    """
    message = dict(message, sent=time.time())
    group = group_for(key)
    if _hand_off(group, message):
        return True
    try:
        async_to_sync(_send_bounded)(group, message)
    except Exception:  # noqa: BLE001 - a publish failure must never reach the writer
        metrics.PUBLISH_FAILURES.inc()
        logger.warning("publish failed for %s seq=%s; streams will catch up from the table",
                       key, message.get("seq"), exc_info=True)
        return False
    if message.get("type") == EVENT_MESSAGE:
        metrics.EVENTS_PUBLISHED.inc()
    return True


def ephemeral_message(key: str, type: str, data: Any, exclude_user: int | None) -> dict[str, Any]:
    return {
        "type": EPHEMERAL_MESSAGE,
        "key": key,
        "event": type,
        "payload": sse.dumps({"type": type, "docPath": key, "data": _roundtrip(data)}),
        "exclude_user": exclude_user,
    }


def send_ephemeral(*, key: str, type: str, data: Any, exclude_user: int | None = None) -> bool:
    """Send an event that is never stored nor replayed (typing, cursor), from sync code."""
    return broadcast(key, ephemeral_message(key, type, data, exclude_user))


async def abroadcast(group: str, message: dict[str, Any]) -> bool:
    """``group_send`` from async code, bounded in time; never raises."""
    try:
        await asyncio.wait_for(get_channel_layer().group_send(group, message), timeout=PUBLISH_TIMEOUT)
    except Exception:  # noqa: BLE001
        metrics.PUBLISH_FAILURES.inc()
        logger.warning("publish of %s to %s failed (seq=%s)", message.get("type"), group, message.get("seq"),
                       exc_info=True)
        return False
    if message.get("type") == EVENT_MESSAGE:
        metrics.EVENTS_PUBLISHED.inc()
    return True


async def abroadcast_ephemeral(*, key: str, type: str, data: Any, exclude_user: int | None = None) -> bool:
    return await abroadcast(group_for(key), ephemeral_message(key, type, data, exclude_user))


def revoke(*, user_id: int | None, key: str | None = None, revocation_id: int | None = None) -> bool:
    """Close ``user_id``'s streams (on ``key``, or everywhere; every user's on
    ``key`` when ``user_id`` is None) on every process.

    Their clients reconnect at once and are checked again: a user who may
    still read gets their stream back from Last-Event-ID; one who may not gets
    404 (or 401).  Sent through the same per-process channel as events, so no
    event published after the revocation reaches the closed streams.
    """
    message = {"type": CONTROL_MESSAGE, "action": "revoke", "user_id": user_id, "key": key, "at": time.time(),
               "id": revocation_id}
    try:
        async_to_sync(_send_bounded)(CONTROL_GROUP, message)
    except Exception:  # noqa: BLE001 - every hub also polls the Revocation table
        metrics.PUBLISH_FAILURES.inc()
        logger.warning("revocation broadcast failed for user %s", user_id, exc_info=True)
        return False
    return True


def announce_pruned(*, key: str, first_kept: int) -> bool:
    """Tell every process that ``key``'s events before ``first_kept`` are gone
    (``prune_events``).  Best effort: a hub that misses it reads the same from
    the table at its next resync."""
    message = {"type": CONTROL_MESSAGE, "action": "pruned", "key": key, "first_kept": first_kept}
    try:
        async_to_sync(_send_bounded)(CONTROL_GROUP, message)
    except Exception:  # noqa: BLE001
        logger.warning("prune announcement failed for %s", key, exc_info=True)
        return False
    return True


def revoke_on_commit(*, user_id: int | None, key: str | None = None) -> None:
    """Record a revocation in the current transaction and broadcast it after commit.

    ``user_id`` None: every user's streams on ``key``."""
    row = Revocation.objects.create(user_id=user_id, key=key or "")
    # With its row's id, a hub applies it once, by whichever way it arrives first.
    transaction.on_commit(lambda: revoke(user_id=user_id, key=key, revocation_id=row.pk))
