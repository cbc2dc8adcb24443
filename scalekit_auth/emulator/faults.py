"""Injected faults and call counters, shared by the gRPC interceptor and the HTTP endpoints.

Faults are set through the control API: a token-bucket rate limit (requests per second and
burst, answered with RESOURCE_EXHAUSTED / HTTP 429 and a ``retry-after``), added latency per
call, and a ratio of calls failing with UNAVAILABLE / HTTP 503. ``methods`` restricts them to
some calls (gRPC method names such as ``CreateUserAndMembership``, or HTTP paths such as
``/oauth/token``, matched exactly); empty means every management call.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

# The largest value each numeric fault option accepts: a 2-minute latency outlasts any client
# timeout worth testing, and a ratio is at most 1.
LIMITS = {
    "rate_limit_rps": 1_000_000,
    "rate_limit_burst": 1_000_000,
    "latency_ms": 120_000,
    "unavailable_ratio": 1,
}


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` banked. Thread-safe."""

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


@dataclass
class FaultConfig:
    rate_limit_rps: float = 0.0
    rate_limit_burst: float = 0.0
    latency_ms: float = 0.0
    unavailable_ratio: float = 0.0
    methods: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultConfig:
        """Check and build the faults; ``ValueError`` names the option that is wrong."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault options: {', '.join(sorted(unknown))}")
        for name, limit in LIMITS.items():
            value = data.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, not {value!r}")
            if value < 0:
                raise ValueError(f"{name} must not be negative")
            if not math.isfinite(value) or value > limit:
                raise ValueError(f"{name} must be between 0 and {limit}, not {value!r}")
        methods = data.get("methods", [])
        if not isinstance(methods, list) or not all(isinstance(m, str) and m for m in methods):
            raise ValueError(
                "methods must be a list of gRPC method names or HTTP paths, e.g. "
                '["CreateUserAndMembership", "/oauth/token"]'
            )
        config = cls(**data)
        if config.rate_limit_burst and not config.rate_limit_rps:
            raise ValueError("rate_limit_burst needs rate_limit_rps (the refill rate)")
        if config.rate_limit_rps and config.rate_limit_burst and config.rate_limit_burst < 1:
            raise ValueError("rate_limit_burst must be at least 1")
        return config


@dataclass(frozen=True)
class Decision:
    """What to do with one call: sleep ``delay_s``, then fail or proceed."""

    delay_s: float = 0.0
    retry_after_s: float | None = None
    unavailable: bool = False


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.config = FaultConfig()
        self._bucket: TokenBucket | None = None
        self.counters: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

    def configure(self, data: dict[str, Any]) -> FaultConfig:
        config = FaultConfig.from_dict(data)
        bucket = None
        if config.rate_limit_rps:
            bucket = TokenBucket(
                config.rate_limit_rps, config.rate_limit_burst or max(1.0, config.rate_limit_rps)
            )
        with self._lock:
            self.config, self._bucket = config, bucket
        return config

    def clear(self) -> None:
        self.configure({})

    def count(self, method: str) -> None:
        with self._lock:
            self.counters[method] += 1

    def decide(self, method: str) -> Decision:
        """Apply the configured faults to one call of ``method``."""
        config, bucket = self.config, self._bucket
        if config.methods and method not in config.methods:
            return Decision()
        if bucket is not None:
            wait = bucket.take()
            if wait:
                with self._lock:
                    self.rejected[method] += 1
                return Decision(retry_after_s=wait)
        unavailable = bool(config.unavailable_ratio) and random.random() < config.unavailable_ratio
        if unavailable:
            with self._lock:
                self.rejected[method] += 1
        return Decision(delay_s=config.latency_ms / 1000, unavailable=unavailable)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": asdict(self.config),
                "calls": dict(self.counters),
                "rejected": dict(self.rejected),
            }

    def reset_counters(self) -> None:
        with self._lock:
            self.counters.clear()
            self.rejected.clear()
