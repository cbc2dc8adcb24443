"""One rate limit for every thread and worker of an import: a token bucket.

With Redis (``MIGRATION['REDIS_URL']``, by default the project's ``REDIS_URL``) the bucket lives
in one Redis hash, updated atomically by a Lua script that reads the Redis server's clock, so
workers on different machines share it without clock skew. Without Redis it is a bucket in this
process, shared by its threads.

A RESOURCE_EXHAUSTED answer from Scalekit calls ``pause(seconds)``: the bucket refuses every
token until then, and restarts empty so the workers do not all fire at the same instant.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'pause_until')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
local pause_until = tonumber(state[3]) or 0
if now < pause_until then
  return tostring(pause_until - now)
end
if tokens == nil then
  tokens = burst
  ts = now
end
if ts > now then ts = now end
tokens = math.min(burst, tokens + (now - ts) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""

_PAUSE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'pause_until')) or 0
if until_ > current then
  redis.call('HSET', KEYS[1], 'pause_until', tostring(until_), 'tokens', '0', 'ts', tostring(until_))
  redis.call('HINCRBY', KEYS[1], 'pauses', 1)
end
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(math.max(until_, current) - now)
"""


def default_burst(rate: float, burst: float | None) -> float:
    """A tenth of a second's worth unless set.

    A small bucket keeps the server's own bucket (often one second's worth) nearly full, so the
    jitter of many workers' requests does not run into its limit once the import is steady.
    """
    return float(burst) if burst else max(1.0, float(rate) / 10)


class RateLimiter(Protocol):
    def acquire(self) -> float:
        """Block until one request may go; return the seconds waited."""

    def pause(self, seconds: float) -> None:
        """Let no request go for ``seconds`` (every worker sharing the bucket)."""

    def pauses(self) -> int:
        """How many pauses were started (for reports)."""


class LocalTokenBucket:
    """The bucket in this process, shared by its threads."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = float(rate)
        self.burst = default_burst(rate, burst)
        self.tokens = self.burst
        self.stamp = time.monotonic()
        self.pause_until = 0.0
        self.pause_count = 0
        self.lock = threading.Lock()

    def _try(self) -> float:
        with self.lock:
            now = time.monotonic()
            if now < self.pause_until:
                return self.pause_until - now
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate

    def acquire(self) -> float:
        return _acquire_loop(self._try)

    def pause(self, seconds: float) -> None:
        with self.lock:
            until = time.monotonic() + seconds
            if until > self.pause_until:
                self.pause_until = until
                self.tokens = 0.0
                self.stamp = until
                self.pause_count += 1

    def pauses(self) -> int:
        return self.pause_count


class RedisTokenBucket:
    """The bucket in Redis, shared by every process that uses the same key."""

    def __init__(self, url: str, key: str, rate: float, burst: float | None = None) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.key = key
        self.rate = float(rate)
        self.burst = default_burst(rate, burst)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._pause = self.client.register_script(_PAUSE)

    def _try(self) -> float:
        return float(self._acquire(keys=[self.key], args=[self.rate, self.burst, 1]))

    def acquire(self) -> float:
        return _acquire_loop(self._try)

    def pause(self, seconds: float) -> None:
        self._pause(keys=[self.key], args=[max(float(seconds), 0.0)])

    def pauses(self) -> int:
        return int(self.client.hget(self.key, "pauses") or 0)

    def reset(self) -> None:
        self.client.delete(self.key)


def _acquire_loop(attempt: Callable[[], float]) -> float:
    waited = 0.0
    while True:
        wait = attempt()
        if wait <= 0:
            return waited
        # Sleep a little less than asked, plus jitter, so waiting threads do not move in lockstep.
        delay = min(wait, 1.0) * (0.9 + random.random() * 0.2)
        time.sleep(delay)
        waited += delay


_lock = threading.Lock()
_buckets: dict[tuple[str, str, float, float | None], RateLimiter] = {}


def get_rate_limiter(
    key: str, rate: float, burst: float | None = None, redis_url: str = ""
) -> RateLimiter:
    """The shared bucket for ``key``: in Redis when ``redis_url`` is set, else in this process.

    Buckets are cached per process, so every batch reuses one Redis connection pool.
    """
    cache_key = (redis_url, key, float(rate), burst)
    with _lock:
        bucket = _buckets.get(cache_key)
        if bucket is None:
            if redis_url:
                bucket = RedisTokenBucket(redis_url, key, rate, burst)
            else:
                bucket = LocalTokenBucket(rate, burst)
            _buckets[cache_key] = bucket
        return bucket


def reset_local_buckets() -> None:
    """Forget every cached bucket (tests; a Redis bucket's state stays in Redis)."""
    with _lock:
        _buckets.clear()
