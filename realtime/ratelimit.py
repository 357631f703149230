"""The per-user write limit: a token bucket, atomic across processes.

With ``REDIS_URL`` the bucket lives in Redis and is updated by one Lua script
(read, refill, take, write in one step, with Redis's own clock), so every
process counts against the same tokens.  Without it, in this process under a
lock.  DRF's stock throttles keep a list of timestamps in the cache and update
it without atomicity, per process: they are not used.
"""

from __future__ import annotations

import math
import threading
import time
from functools import lru_cache

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 2)
return {allowed, tostring(wait)}
"""


class MemoryBucket:
    # Past this many buckets, full ones (refilled: nothing to remember) are dropped.
    PRUNE_AT = 10_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[str, tuple[float, float]] = {}

    def take(self, name: str, rate: float, burst: int) -> tuple[bool, float]:
        with self.lock:
            now = time.monotonic()
            if len(self.state) > self.PRUNE_AT:
                self.state = {key: (tokens, ts) for key, (tokens, ts) in self.state.items()
                              if tokens + (now - ts) * rate < burst}
            tokens, ts = self.state.get(name, (float(burst), now))
            tokens = min(burst, tokens + max(0.0, now - ts) * rate)
            if tokens >= 1:
                self.state[name] = (tokens - 1, now)
                return True, 0.0
            self.state[name] = (tokens, now)
            return False, (1 - tokens) / rate


class RedisBucket:
    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.script = self.redis.register_script(_BUCKET)
        self.prefix = prefix
        self.fallback = MemoryBucket()

    def take(self, name: str, rate: float, burst: int) -> tuple[bool, float]:
        try:
            allowed, wait = self.script(keys=[f"{self.prefix}:rate:{name}"], args=[rate, burst])
        except Exception:  # noqa: BLE001 - Redis down: limit per process rather than not at all
            return self.fallback.take(name, rate, burst)
        return bool(allowed), float(wait)


@lru_cache(maxsize=1)
def bucket() -> MemoryBucket | RedisBucket:
    if settings.REDIS_URL:
        return RedisBucket(settings.REDIS_URL, settings.REALTIME_REDIS_PREFIX)
    return MemoryBucket()


def take(user_id: int) -> tuple[bool, float]:
    """Take one write from ``user_id``'s bucket: (allowed, seconds to wait if not)."""
    return bucket().take(f"user:{user_id}", settings.WRITE_RATE_PER_SECOND, settings.WRITE_RATE_BURST)


def take_sign_in(username: str) -> tuple[bool, float]:
    """Take one attempt from ``username``'s sign-in bucket (any process)."""
    return bucket().take(f"signin:{username.casefold()[:150]}", settings.SIGN_IN_RATE_PER_SECOND,
                         settings.SIGN_IN_RATE_BURST)


class SignInRateThrottle(BaseThrottle):
    """Password attempts for a token, per username: guessing one account's
    password is slowed to the bucket's rate, wherever the guesses come from."""

    def allow_request(self, request, view) -> bool:
        self._wait = 0.0
        data = request.data
        username = data.get("username") if hasattr(data, "get") else None
        if not isinstance(username, str) or not username:
            return True  # refused by the serializer, with nothing to guess
        allowed, self._wait = take_sign_in(username)
        return allowed

    def wait(self) -> float | None:
        return max(1, math.ceil(self._wait)) if self._wait else None


class WriteRateThrottle(BaseThrottle):
    """DRF throttle over the shared bucket, for unsafe methods of signed-in users."""

    def allow_request(self, request, view) -> bool:
        self._wait = 0.0
        if request.method in SAFE_METHODS or not request.user.is_authenticated:
            return True
        allowed, self._wait = take(request.user.pk)
        return allowed

    def wait(self) -> float | None:
        return max(1, math.ceil(self._wait)) if self._wait else None
