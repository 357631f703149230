"""Stream leases: the connection limits and presence, across processes.

Every open stream holds a lease with a time to live, renewed by its process's
hub.  A process that dies stops renewing, so its leases expire by themselves:
nothing is counted that could leak.  The same leases answer "how many streams
does this user have", "how many does this document have" and "who is online
on this document".  With ``REDIS_URL`` they live in Redis (sorted sets scored
by expiry, changed by Lua scripts so each check-and-add is atomic); without
it, in this process.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from .groups import group_for


@dataclass(frozen=True, slots=True)
class Lease:
    id: str
    user_id: int
    username: str
    key: str


@dataclass(frozen=True)
class Acquired:
    ok: bool
    refused: str = ""  # "user" or "document" when not ok
    # The user had no live stream on this key and was not announced online:
    # this stream makes them online (recorded in the same atomic step).
    went_online: bool = False


class LeaseStore(Protocol):
    async def acquire(self, lease: Lease, *, user_limit: int, doc_limit: int) -> Acquired: ...
    async def release(self, lease: Lease) -> int:
        """Drop the lease; returns the user's remaining live leases on its key."""
    async def renew(self, leases: list[Lease]) -> None: ...
    async def online(self, key: str) -> dict[int, str]:
        """Users with a live lease on ``key``: {user_id: username}."""
    async def user_count(self, key: str, user_id: int) -> int: ...
    async def flip(self, key: str, user_id: int, state: str, username: str) -> bool:
        """Record ``state`` ("online"/"offline") for the user on ``key``; True if it changed.

        Exactly one caller wins a change, so exactly one process announces it."""
    async def announced_online(self, key: str) -> dict[int, str]:
        """Users last announced online on ``key``: {user_id: username}."""
    async def heartbeat(self) -> None:
        """Say this process is alive (its leases count while it is)."""


def ttl() -> float:
    return settings.SSE_LEASE_TTL_SECONDS


# This process's start, in every lease id it issues ("<instance>-<n>"), so
# other processes can tell its leases apart from those of a process that died.
INSTANCE = uuid.uuid4().hex[:16]
_lease_numbers = itertools.count(1)
# A process refreshes its heartbeat every hub tick (1 s); one silent this long
# is dead, and its leases no longer count against the limits.
HEARTBEAT_SECONDS = 5


def new_lease_id() -> str:
    return f"{INSTANCE}-{next(_lease_numbers)}"


# --- in-process -------------------------------------------------------------


class MemoryLeaseStore:
    """For one process (no REDIS_URL).  Counts are kept per user, per key and
    per (key, user), and expiries in a heap (one entry per lease, at or before
    its expiry), so each call is O(1) amortised rather than a scan of every
    lease."""

    def __init__(self) -> None:
        self.expiry: dict[str, float] = {}
        self.leases: dict[str, Lease] = {}
        self.state: dict[tuple[str, int], tuple[str, str]] = {}
        self.heap: list[tuple[float, str]] = []
        self.per_user: dict[int, int] = {}
        self.per_doc: dict[str, int] = {}
        self.per_doc_user: dict[str, dict[int, list]] = {}  # key -> user_id -> [count, username]

    def _add(self, lease: Lease, until: float) -> None:
        self.leases[lease.id] = lease
        self.expiry[lease.id] = until
        heapq.heappush(self.heap, (until, lease.id))
        self.per_user[lease.user_id] = self.per_user.get(lease.user_id, 0) + 1
        self.per_doc[lease.key] = self.per_doc.get(lease.key, 0) + 1
        entry = self.per_doc_user.setdefault(lease.key, {}).setdefault(lease.user_id, [0, lease.username])
        entry[0] += 1

    def _drop(self, lease_id: str) -> None:
        lease = self.leases.pop(lease_id, None)
        self.expiry.pop(lease_id, None)
        if lease is None:
            return
        self.per_user[lease.user_id] -= 1
        if not self.per_user[lease.user_id]:
            del self.per_user[lease.user_id]
        self.per_doc[lease.key] -= 1
        if not self.per_doc[lease.key]:
            del self.per_doc[lease.key]
        users = self.per_doc_user[lease.key]
        users[lease.user_id][0] -= 1
        if not users[lease.user_id][0]:
            del users[lease.user_id]
            if not users:
                del self.per_doc_user[lease.key]

    def _purge(self) -> None:
        now = time.monotonic()
        heap = self.heap
        while heap and heap[0][0] <= now:
            until, lease_id = heapq.heappop(heap)
            current = self.expiry.get(lease_id)
            if current is None:
                continue  # released
            if current <= now:
                self._drop(lease_id)
            else:
                # Renewed since it was pushed: pushed again, once per TTL at
                # most, rather than once per renewal.
                heapq.heappush(heap, (current, lease_id))

    async def acquire(self, lease: Lease, *, user_limit: int, doc_limit: int) -> Acquired:
        self._purge()
        if self.per_user.get(lease.user_id, 0) >= user_limit:
            return Acquired(False, "user")
        if self.per_doc.get(lease.key, 0) >= doc_limit:
            return Acquired(False, "document")
        first = lease.user_id not in self.per_doc_user.get(lease.key, {})
        self._add(lease, time.monotonic() + ttl())
        went_online = first and await self.flip(lease.key, lease.user_id, "online", lease.username)
        return Acquired(True, went_online=went_online)

    async def release(self, lease: Lease) -> int:
        self._drop(lease.id)
        return await self.user_count(lease.key, lease.user_id)

    async def renew(self, leases: list[Lease]) -> None:
        # Only the expiry moves: each lease keeps its one heap entry, which
        # ``_purge`` pushes again when it comes up early.  A heap entry per
        # renewal was ~0.2 KB per open stream.
        until = time.monotonic() + ttl()
        expiry = self.expiry
        for lease in leases:
            if lease.id in expiry:
                expiry[lease.id] = until
        if len(self.heap) > 4 * len(self.expiry) + 64:  # drop the entries of released leases
            self.heap = [(until, lid) for lid, until in self.expiry.items()]
            heapq.heapify(self.heap)

    async def online(self, key: str) -> dict[int, str]:
        self._purge()
        return {uid: entry[1] for uid, entry in self.per_doc_user.get(key, {}).items()}

    async def user_count(self, key: str, user_id: int) -> int:
        self._purge()
        entry = self.per_doc_user.get(key, {}).get(user_id)
        return entry[0] if entry else 0

    async def heartbeat(self) -> None:
        """Nothing to say: the leases die with the process."""

    async def flip(self, key: str, user_id: int, state: str, username: str) -> bool:
        current = self.state.get((key, user_id), ("offline", ""))[0]
        if current == state:
            return False
        if state == "offline":
            del self.state[(key, user_id)]
        else:
            self.state[(key, user_id)] = (state, username)
        return True

    async def announced_online(self, key: str) -> dict[int, str]:
        return {uid: name for (k, uid), (state, name) in self.state.items() if k == key and state == "online"}


# --- Redis ------------------------------------------------------------------

_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('SET', ARGV[10] .. ARGV[11], 1, 'EX', ARGV[12])
for i = 1, 3 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now) end
-- Before refusing: drop the leases of processes whose heartbeat is gone
-- (killed), which would otherwise count until their TTL runs out.
local function prune(key, pattern)
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local instance = string.match(member, pattern)
    if instance and redis.call('EXISTS', ARGV[10] .. instance) == 0 then redis.call('ZREM', key, member) end
  end
  return redis.call('ZCARD', key)
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) and prune(KEYS[1], '^(%x+)%-') >= tonumber(ARGV[3]) then
  return {0, 'user', 0}
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) and prune(KEYS[2], '^%d+:(%x+)%-') >= tonumber(ARGV[4]) then
  return {0, 'document', 0}
end
local announce = 0
if redis.call('ZCARD', KEYS[3]) == 0 and redis.call('HSETNX', KEYS[4], ARGV[8], ARGV[9]) == 1 then
  redis.call('EXPIRE', KEYS[4], 86400)
  announce = 1
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[5])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
return {1, '', announce}
"""

_FLIP = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local was_online = current ~= false
if (ARGV[2] == 'online') == was_online then return 0 end
if ARGV[2] == 'online' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('EXPIRE', KEYS[1], 86400)
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""


_RENEW = """
-- KEYS: (user, document, document-user) per lease; ARGV: expiry score, key
-- TTL, released-marker prefix, then (lease id, document member) per lease.
-- A plain ZADD, so a lease Redis lost (a restart) is put back; not for a
-- lease released meanwhile (its marker outlives any renewal in flight).
local score, expire, released = ARGV[1], ARGV[2], ARGV[3]
for i = 0, #KEYS / 3 - 1 do
  local id, member = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
  if redis.call('EXISTS', released .. id) == 0 then
    redis.call('ZADD', KEYS[3 * i + 1], score, id)
    redis.call('ZADD', KEYS[3 * i + 2], score, member)
    redis.call('ZADD', KEYS[3 * i + 3], score, id)
    for k = 1, 3 do redis.call('EXPIRE', KEYS[3 * i + k], expire) end
  end
end
return 0
"""

# Leases renewed per script call (its keys and arguments are held in memory).
RENEW_BATCH = 500


class RedisLeaseStore:
    """Shared by every process on the same Redis."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30)
        self.prefix = prefix
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._flip = self.redis.register_script(_FLIP)
        self._renew = self.redis.register_script(_RENEW)

    def _user_key(self, user_id: int) -> str:
        return f"{self.prefix}:lease:user:{user_id}"

    def _doc_key(self, key: str) -> str:
        return f"{self.prefix}:lease:doc:{group_for(key)}"

    def _doc_user_key(self, key: str, user_id: int) -> str:
        return f"{self.prefix}:lease:du:{group_for(key)}:{user_id}"

    def _state_key(self, key: str) -> str:
        return f"{self.prefix}:presence:{group_for(key)}"

    def _released_prefix(self) -> str:
        return f"{self.prefix}:lease:released:"

    @staticmethod
    def _member(lease: Lease) -> str:
        return f"{lease.user_id}:{lease.id}:{lease.username}"

    async def acquire(self, lease: Lease, *, user_limit: int, doc_limit: int) -> Acquired:
        now = time.time()
        ok, refused, announce = await self._acquire(
            keys=[self._user_key(lease.user_id), self._doc_key(lease.key), self._doc_user_key(lease.key, lease.user_id),
                  self._state_key(lease.key)],
            args=[now, now + ttl(), user_limit, doc_limit, lease.id, self._member(lease), int(ttl() * 2) + 1,
                  lease.user_id, lease.username, f"{self.prefix}:proc:", INSTANCE, HEARTBEAT_SECONDS],
        )
        refused = refused.decode() if isinstance(refused, bytes) else refused
        return Acquired(bool(ok), refused or "", bool(announce))

    async def release(self, lease: Lease) -> int:
        du = self._doc_user_key(lease.key, lease.user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._released_prefix() + lease.id, 1, ex=int(ttl() * 2) + 1)
            pipe.zrem(self._user_key(lease.user_id), lease.id)
            pipe.zrem(self._doc_key(lease.key), self._member(lease))
            pipe.zrem(du, lease.id)
            pipe.zremrangebyscore(du, "-inf", time.time())
            pipe.zcard(du)
            results = await pipe.execute()
        return int(results[-1])

    async def renew(self, leases: list[Lease]) -> None:
        """Push every lease's expiry on; put back one that Redis lost (after a
        restart), so limits and presence count the streams still open."""
        if not leases:
            return
        until = time.time() + ttl()
        expire = int(ttl() * 2) + 1
        for start in range(0, len(leases), RENEW_BATCH):
            keys: list[str] = []
            args: list = [until, expire, self._released_prefix()]
            for lease in leases[start:start + RENEW_BATCH]:
                keys += [self._user_key(lease.user_id), self._doc_key(lease.key),
                         self._doc_user_key(lease.key, lease.user_id)]
                args += [lease.id, self._member(lease)]
            await self._renew(keys=keys, args=args)

    async def online(self, key: str) -> dict[int, str]:
        doc = self._doc_key(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(doc, "-inf", time.time())
            pipe.zrange(doc, 0, -1)
            _, members = await pipe.execute()
        users: dict[int, str] = {}
        for member in members:
            uid, _, rest = member.decode().partition(":")
            _, _, username = rest.partition(":")
            users[int(uid)] = username
        return users

    async def user_count(self, key: str, user_id: int) -> int:
        du = self._doc_user_key(key, user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(du, "-inf", time.time())
            pipe.zcard(du)
            _, count = await pipe.execute()
        return int(count)

    async def flip(self, key: str, user_id: int, state: str, username: str) -> bool:
        return bool(await self._flip(keys=[self._state_key(key)], args=[user_id, state, username]))

    async def heartbeat(self) -> None:
        await self.redis.set(f"{self.prefix}:proc:{INSTANCE}", 1, ex=HEARTBEAT_SECONDS)

    async def announced_online(self, key: str) -> dict[int, str]:
        states = await self.redis.hgetall(self._state_key(key))
        return {int(uid): name.decode() for uid, name in states.items()}


_stores: dict[asyncio.AbstractEventLoop, LeaseStore] = {}


def get_store() -> LeaseStore:
    """The lease store of the running loop (Redis clients are bound to a loop)."""
    loop = asyncio.get_running_loop()
    store = _stores.get(loop)
    if store is None:
        if settings.REDIS_URL:
            store = RedisLeaseStore(settings.REDIS_URL, settings.REALTIME_REDIS_PREFIX)
        else:
            store = MemoryLeaseStore()
        _stores[loop] = store
    return store
