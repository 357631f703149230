"""``GET /api/events?docPath=...``: the Server-Sent Events endpoint.

A plain ASGI application rather than a Channels ``AsyncHttpConsumer``: a
consumer stops as soon as ``handle()`` returns and dispatches no layer message
while it runs (channels #1302, #1747), and a consumer per stream means a layer
channel and a dispatch task per stream.  Here each stream is one coroutine fed
by the process's hub; under a server whose connection it can see the hub
also notices the client leaving, elsewhere a small task waits for it.
Under uvicorn and daphne the hub writes a live frame straight to the
connection while the stream is idle (``realtime.transport``); the stream's
coroutine only wakes for what needs it: a gap to fill from the table, a
close.

Order of work on connect: authenticate and check access (``realtime.gate``:
batched with the opens of the same moment, briefly cached), take a lease,
join the hub (so live events are captured from now on), take the replay (from
the hub's ring of recent frames, else the table), send it, then send live
frames, dropping any at or below what the replay covered.  Every database call
is a short function on the stream executor's threads; nothing is held across
an await for the stream's life.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db import DatabaseError

from . import log, metrics, presence, sse
from .access import policy
from .auth import token_of
from .hub import Subscriber, get_hub
from .leases import Acquired, Lease, get_store, new_lease_id
from .origins import origin_allowed
from .transport import outbox_for

logger = logging.getLogger(__name__)

MAX_EVENT_ID = 2**63 - 1


class Reject(Exception):
    """An error answered as JSON before any stream byte."""

    def __init__(self, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def parse_event_id(raw: str | None) -> int | None:
    """A Last-Event-ID as an int; None when absent; Reject(400) when malformed."""
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_EVENT_ID:
        raise Reject(400, {"lastEventId": ["Must be a non-negative integer event id."]})
    return int(raw)


async def _respond_json(send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"cache-control", b"no-store"),
            *headers,
        ],
    })
    await send({"type": "http.response.body", "body": payload})


class EventStreamApp:
    """The ASGI application of the event stream."""

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _respond_json(send, 405, {"detail": f'Method "{scope["method"]}" not allowed.'},
                                [(b"allow", b"GET")])
            return
        try:
            sub, replay, first = await self._open(scope)
        except Reject as reject:
            await _respond_json(send, reject.status, reject.body, reject.headers)
            return
        # The request headers (cookies included) are not needed again: do not
        # keep them for the stream's life.  Emptied in place: the server holds
        # the same list (uvicorn's protocol, daphne's request), so rebinding
        # the key would free nothing.
        headers = scope.get("headers")
        if isinstance(headers, list):
            headers.clear()
        else:
            scope["headers"] = []
        del headers
        outbox = outbox_for(send)
        outbox.cap_send_buffer(settings.SSE_SEND_BUFFER_BYTES)
        outbox.trim(receive)
        sub.outbox = outbox
        # On a server whose connection we can see, the hub's tick notices a
        # client that left (``Outbox.closed``); elsewhere a task waits for
        # ``http.disconnect``.
        watcher = None if outbox.closed() is not None else asyncio.create_task(self._watch_disconnect(receive, sub))
        # The live part runs in this coroutine's own frame, not in one more
        # awaited coroutine: a frame less held per open stream.
        try:
            if await self._begin(scope, send, sub, replay, first):
                replay = None
                # From here the hub writes next-in-line frames straight to the
                # connection while this coroutine is parked in ``sub.wait``.
                # Not without coalescing (SSE_COALESCE_MS=0): a write per event
                # and stream then costs a system call each, where a woken
                # stream that is behind sends what piled up in one.
                sub.direct = get_hub().coalesce > 0 and outbox.start_direct()
                while True:
                    await sub.wait()
                    if sub.closed and sub.reason in ("client_gone", "slow"):
                        break
                    data, gap = sub.take()
                    if data:
                        await send({"type": "http.response.body", "body": data, "more_body": True})
                        sub.last_write = time.monotonic()
                        # What the server holds unsent counts against the same
                        # bound as the hub's buffer (daphne never makes send wait).
                        if outbox.pending() + sub.size > sub.max_bytes:
                            sub.close("slow")
                            break
                    if gap is not None:
                        await self._catch_up(send, sub, upto=gap - 1)
                    if sub.closed and not sub.chunks:
                        break
                if sub.reason not in ("client_gone", "slow"):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            sub.close("client_gone")
        finally:
            if watcher is not None:
                watcher.cancel()
            get_hub().unsubscribe(sub)
            if sub.lease is not None:
                await presence.left(sub.lease)
            metrics.DISCONNECTS.labels(reason=sub.reason or "client_gone").inc()
            logger.info("stream closed doc=%s user=%s reason=%s last_id=%s",
                        sub.key, sub.username, sub.reason or "client_gone", sub.last_id)

    async def _open(self, scope: dict[str, Any]) -> tuple[Subscriber, log.Replay, bool]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        # A repeated parameter counts by its last value, as in the REST API (Django's QueryDict).
        key = (query.get("docPath") or [""])[-1]
        headers = scope.get("headers", [])
        try:
            grant = await get_hub().gate.authorize(headers, key)
        except DatabaseError:
            raise Reject(503, {"detail": "Service temporarily unavailable."}, [(b"retry-after", b"2")])
        audience = grant.audience
        if not grant.authenticated:
            # Worded as DRF words it for the REST endpoints.
            detail = "Invalid token." if token_of(headers)[1] is not None else \
                "Authentication credentials were not provided."
            raise Reject(401, {"detail": detail}, [(b"www-authenticate", b"Token")])
        if not key:
            raise Reject(400, {"docPath": ["This field is required."]})
        if not policy().is_valid_key(key):
            raise Reject(400, {"docPath": ["Enter a valid document path."]})
        if audience is None:
            raise Reject(404, {"detail": "Not found."})
        header_id = _header(scope, b"last-event-id")
        from_query = (query.get("lastEventId") or [""])[-1]
        last_event_id = parse_event_id(header_id if header_id not in (None, "") else from_query)
        if get_hub().stopping:
            raise Reject(503, {"detail": "Server restarting."}, [(b"retry-after", b"1")])
        if not origin_allowed(scope):
            # Checked before a lease is taken: a cross-site page can neither
            # stream nor use up the user's stream slots.
            raise Reject(403, {"detail": "Origin not allowed."})

        lease = Lease(id=new_lease_id(), user_id=grant.user_id, username=grant.username,
                      key=key)
        acquired = await self._acquire(lease)
        lifetime = settings.SSE_MAX_LIFETIME_SECONDS
        lifetime = lifetime * (1 - 0.1 * random.random()) if lifetime else None
        sub = Subscriber(key=key, audience=audience, user_id=grant.user_id, lifetime=lifetime,
                         username=grant.username, lease=lease)
        # Opened, for revocations, when the access was read (a cached grant is older).
        sub.opened_at = grant.authorized_at
        sub.read_at = grant.read_at
        hub = get_hub()
        try:
            await hub.subscribe(sub)
            replay = await hub.replay(sub, last_event_id, settings.SSE_REPLAY_LIMIT)
            if replay is None:
                replay = await log.in_thread(log.read_replay)(
                    key, after=last_event_id, limit=settings.SSE_REPLAY_LIMIT, audience=audience
                )
        except DatabaseError:
            hub.unsubscribe(sub)
            await presence.left(lease)
            raise Reject(503, {"detail": "Service temporarily unavailable."}, [(b"retry-after", b"2")])
        except BaseException:
            hub.unsubscribe(sub)
            await presence.left(lease)
            raise
        logger.info("stream open doc=%s user=%s last_event_id=%s replay=%d%s", key, sub.username,
                    last_event_id, len(replay.frames), " reset" if replay.reset else "")
        return sub, replay, acquired.went_online

    @staticmethod
    async def _acquire(lease: Lease) -> Acquired:
        try:
            acquired = await get_store().acquire(
                lease, user_limit=settings.SSE_MAX_CONNECTIONS_PER_USER,
                doc_limit=settings.SSE_MAX_CONNECTIONS_PER_DOCUMENT,
            )
        except Exception:  # noqa: BLE001 - Redis down: serve, unlimited, rather than refuse everyone
            logger.warning("lease store unavailable; stream opened without a lease", exc_info=True)
            return Acquired(True, went_online=False)
        if acquired.ok:
            return acquired
        if acquired.refused == "user":
            raise Reject(429, {"detail": "Too many open event streams for this user."}, [(b"retry-after", b"5")])
        raise Reject(503, {"detail": "Too many open event streams on this document."}, [(b"retry-after", b"10")])

    async def _begin(self, scope, send, sub: Subscriber, replay: log.Replay, first: bool) -> bool:
        """The response head, the replay (and any catch-up) and who is online.
        False for HEAD, which ends there."""
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),  # SSE is UTF-8 by definition
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
                (b"x-content-type-options", b"nosniff"),
            ],
        })
        head = [sse.retry(settings.SSE_RETRY_MS)]
        if sub.closed and sub.reason == "revoked":
            # Revoked while opening: its replay was read after the revocation.
            # It ends with nothing; the client's reconnect is checked afresh.
            await send({"type": "http.response.body", "body": head[0], "more_body": False})
            return False
        if replay.reset:
            head.append(sse.frame(event="stream.reset", data=sse.dumps({"lastEventId": replay.last_id})))
            sub.last_id = replay.last_id
        else:
            head.extend(data for _, data in replay.frames)
            sub.last_id = replay.frames[-1][0] if replay.frames else replay.last_id
            metrics.EVENTS_REPLAYED.inc(len(replay.frames))
        if scope["method"] == "HEAD":
            sub.close("head")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return False
        await send({"type": "http.response.body", "body": b"".join(head), "more_body": True})
        # The replay is sent: let it go now, not when the stream ends.
        del head
        replay.frames = []
        if replay.more:
            await self._catch_up(send, sub, upto=replay.last_id)
        await self._presence(send, sub, first)
        return True

    @staticmethod
    async def _presence(send, sub: Subscriber, first: bool) -> None:
        """Right after the replay: who is online now; then announce this user."""
        frames = await get_hub().presence_frames(sub.key)
        if frames:
            await send({"type": "http.response.body", "body": frames, "more_body": True})
        if sub.lease is not None:
            await presence.joined(sub.lease, first)

    async def _catch_up(self, send, sub: Subscriber, *, upto: int) -> None:
        """Send events ``sub.last_id + 1 .. upto`` from the table."""
        while sub.last_id < upto and not sub.closed:
            try:
                frames = await log.in_thread(log.read_frames)(
                    sub.key, after=sub.last_id, upto=upto, audience=sub.audience
                )
            except log.Pruned:
                # Ended here: its client reconnects from the last id it got
                # and is told ``stream.reset``, rather than missing events.
                sub.close("pruned")
                return
            if not frames:
                return
            await send({"type": "http.response.body", "body": b"".join(f for _, f in frames), "more_body": True})
            sub.last_id = frames[-1][0]
            metrics.EVENTS_REPLAYED.inc(len(frames))

    @staticmethod
    async def _watch_disconnect(receive, sub: Subscriber) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                sub.close("client_gone")
                return
