"""Token buckets: a burst allowance refilled at a steady rate."""

from __future__ import annotations

import time


class TokenBucket:
    """`take()` spends one token if there is one; otherwise `retry_after_ms()` says when there will be."""

    __slots__ = ("rate", "burst", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: float):
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, cost: float = 1.0) -> bool:
        self._refill()
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def retry_after_ms(self, cost: float = 1.0) -> int:
        self._refill()
        missing = max(0.0, cost - self._tokens)
        return max(1, int(missing / self.rate * 1000 + 0.999))


class KeyedBuckets:
    """One bucket per key (a user name, an address), forgetting keys that are full again."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000):
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self._max_keys = max_keys

    def take(self, key: str) -> int | None:
        """None if allowed; otherwise the milliseconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._prune()
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        if bucket.take():
            return None
        return bucket.retry_after_ms()

    def peek(self, key: str) -> int | None:
        """Like `take` but spends nothing."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        bucket._refill()
        return None if bucket._tokens >= 1 else bucket.retry_after_ms()

    def _prune(self) -> None:
        for key, bucket in list(self._buckets.items()):
            bucket._refill()
            if bucket._tokens >= bucket.burst:
                del self._buckets[key]


class LoginGuard:
    """Limits failed sign-ins per name and per address; past the limit even a right password waits.

    Only failures count, so people signing in normally (or a test suite
    signing in many users from one address) are never slowed down.
    """

    def __init__(self, per_name_per_minute: int, per_address_per_minute: int):
        self._names = KeyedBuckets(per_name_per_minute / 60, per_name_per_minute)
        self._addresses = KeyedBuckets(per_address_per_minute / 60, per_address_per_minute)

    def blocked_ms(self, address: str, name: str) -> int | None:
        """Milliseconds until another attempt is allowed, or None if it is allowed now."""
        waits = [w for w in (self._names.peek(name), self._addresses.peek(address)) if w is not None]
        return max(waits) if waits else None

    def failed(self, address: str, name: str) -> None:
        self._names.take(name)
        self._addresses.take(address)
