"""Who may open a stream: authentication and access, in batches, with a short cache.

A reconnect storm (a restarted process, a network blip) opens hundreds of
streams in the same second.  Each open used to make its own trip to a worker
thread and a new database connection for the token, the document and the
membership.  Here the opens waiting at the same moment share one trip and one
query per kind (``authorize_many``), and a granted ``(token, key)`` is reused
for ``SSE_AUTH_CACHE_SECONDS``.  Session cookies are checked on every open.

Security: a cached grant is as old as the read that made it, and a stream
opened on it counts as opened at that read (``Grant.authorized_at``), so a
revocation recorded after the read closes it like any older stream.  Every
revocation the hub learns of (layer message, or the Revocation table polled
each second) evicts the matching grants first.  Refusals are never cached.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from . import log
from .access import policy
from .auth import authenticate, token_of

MAX_BATCH = 256
MAX_IN_FLIGHT = 2


@dataclass(frozen=True)
class Grant:
    authenticated: bool
    user_id: Any = None
    username: str = ""
    audience: str | None = None
    authorized_at: float = 0.0  # time.time() when the read began
    read_at: float = 0.0  # time.monotonic() when the read began (this process's clock)


ANONYMOUS = Grant(False)


def authorize_many(requests: list[tuple[list[tuple[bytes, bytes]], str, str | None]]) -> list[Grant]:
    """Grants for many (headers, key, token) at once: one token query, and per
    key one document and one membership query.  Runs in a worker thread."""
    from rest_framework.authtoken.models import Token

    started, read_at = time.time(), time.monotonic()
    tokens = {token for _, _, token in requests if token}
    by_token = {}
    if tokens:
        for found in Token.objects.select_related("user").filter(key__in=tokens):
            if found.user.is_active:
                by_token[found.key] = found.user
    users = []
    for headers, _, token in requests:
        if token:
            users.append(by_token.get(token) or AnonymousUser())
        else:
            users.append(authenticate(headers))  # the session cookie: one at a time
    by_key: dict[str, list[Any]] = {}
    for user, (_, key, _) in zip(users, requests):
        if user.is_authenticated:
            by_key.setdefault(key, []).append(user)
    rules = policy()
    audiences: dict[tuple[str, Any], str | None] = {}
    for key, members in by_key.items():
        if hasattr(rules, "audiences_for"):
            answers = rules.audiences_for(members, key)
        else:
            answers = {user.pk: rules.audience_for(user, key) for user in members}
        for user_id, audience in answers.items():
            audiences[(key, user_id)] = audience
    grants = []
    for user, (_, key, _) in zip(users, requests):
        if not user.is_authenticated:
            grants.append(ANONYMOUS)
        else:
            grants.append(Grant(True, user.pk, user.get_username(), audiences.get((key, user.pk)), started, read_at))
    return grants


class Gate:
    """One per hub (per process and loop)."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str], tuple[float, Grant]] = {}
        self.pending: list[tuple[list, str, str | None, asyncio.Future[Grant]]] = []
        self.in_flight = 0
        self.scheduled = False
        self.ttl = settings.SSE_AUTH_CACHE_SECONDS
        self.generation = 0  # revocations seen: a batch read across one is read again

    async def authorize(self, headers: list[tuple[bytes, bytes]], key: str) -> Grant:
        has_header, token = token_of(headers)
        if has_header and token is None:
            return ANONYMOUS
        if token is not None and self.ttl > 0:
            hit = self.cache.get((token, key))
            if hit is not None:
                if hit[0] > time.monotonic():
                    return hit[1]
                del self.cache[(token, key)]
        future = asyncio.get_running_loop().create_future()
        self.pending.append((headers, key, token, future))
        if not self.scheduled and self.in_flight < MAX_IN_FLIGHT:
            # One loop turn later: the opens parsed in this turn share the trip.
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._start)
        return await future

    def _start(self) -> None:
        self.scheduled = False
        if not self.pending or self.in_flight >= MAX_IN_FLIGHT:
            return
        batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
        self.in_flight += 1
        asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch) -> None:
        generation = self.generation
        try:
            grants = await log.in_thread(authorize_many)([(h, k, t) for h, k, t, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - each open answers for itself (503)
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
                    future.exception()
            if not isinstance(exc, Exception):
                raise
        else:
            if self.generation != generation:
                # A revocation came while this batch was being read: what it
                # read may predate it.  Read the batch again.
                self.pending[:0] = [entry for entry in batch if not entry[3].done()]
                return
            expires = time.monotonic() + self.ttl
            for (_, key, token, future), grant in zip(batch, grants):
                if token is not None and self.ttl > 0 and grant.audience is not None:
                    self.cache[(token, key)] = (expires, grant)
                if not future.done():
                    future.set_result(grant)
        finally:
            self.in_flight -= 1
            if self.pending and not self.scheduled:
                self._start()

    def evict(self, user_id: Any, key: str | None) -> None:
        """A revocation: forget the grants it concerns (user None: everyone's on
        ``key``), and have the batches being read now read again."""
        self.generation += 1
        if not self.cache:
            return
        for cache_key, (_, grant) in list(self.cache.items()):
            if (user_id is None or grant.user_id == user_id) and (not key or cache_key[1] == key):
                del self.cache[cache_key]

    def sweep(self) -> None:
        now = time.monotonic()
        for cache_key, (expires, _) in list(self.cache.items()):
            if expires <= now:
                del self.cache[cache_key]
