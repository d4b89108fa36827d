"""Rate limits with ``limits`` in Redis (in process memory when embedded): devices' ratings
and staff sign-in failures (service/auth/api.py).

Each app keeps its own counter store in ``app.extensions``, so two apps in one process
(a test deployment beside the suite's own) never count in each other's Redis.

When the store is unreachable hcp **fails open**: ratings are taken unlimited, because a
rating refused is a rating lost, while an unlimited device for a while only costs load
(docs/security.md). One warning is logged per ``LOG_EVERY`` seconds, without a traceback,
and after a failure the store is left alone for ``RETRY_AFTER`` seconds, so an outage
costs no request a timeout.
"""
from __future__ import annotations

import functools
import logging
import threading
import time

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)
EXTENSION = "hcp_rate_limits"
LOG_EVERY = 60.0  # seconds between two warnings of one outage
RETRY_AFTER = 5.0  # seconds without asking the store after it failed


class Limits:
    """One app's limiter and what it knows of its store's health."""

    def __init__(self, limiter: FixedWindowRateLimiter):
        self.limiter = limiter
        self.down_until = 0.0
        self.logged_at = -LOG_EVERY
        self.skipped = 0
        self._lock = threading.Lock()

    def failed(self, err: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self.down_until = now + RETRY_AFTER
            self.skipped += 1
            if now - self.logged_at < LOG_EVERY:
                return
            self.logged_at, skipped, self.skipped = now, self.skipped, 0
        log.warning("rate-limit storage unreachable (%s: %s); devices are not limited until it is back "
                    "(%d unlimited requests since the last warning)", type(err).__name__, err, skipped)


def init_app(app: Flask) -> None:
    settings = app.config["HCP_SETTINGS"]
    uri = settings.redis_url or "memory://"
    # A Redis that hangs must not hold a rating for long: the caller fails open.
    options = {"socket_connect_timeout": 1, "socket_timeout": 1} if uri.startswith("redis") else {}
    app.extensions[EXTENSION] = Limits(FixedWindowRateLimiter(storage_from_string(uri, **options)))


@functools.lru_cache(maxsize=256)
def limit(text: str) -> RateLimitItem:
    """``600/minute`` parsed once per distinct text."""
    return parse(text)


def hit(item: RateLimitItem, cost: int, *key: str) -> float | None:
    """Spend ``cost``; ``None`` if within the limit (or the store is unreachable), else
    the epoch second its window resets."""
    limits: Limits = current_app.extensions[EXTENSION]
    if time.monotonic() < limits.down_until:
        limits.skipped += 1
        return None
    try:
        if limits.limiter.hit(item, *key, cost=cost):
            return None
        return limits.limiter.get_window_stats(item, *key).reset_time
    except Exception as err:  # noqa: BLE001 — any storage failure fails open, logged once per LOG_EVERY
        limits.failed(err)
        return None


def reset() -> None:
    """Forget every count of the current app (tests start each case from zero)."""
    current_app.extensions[EXTENSION].limiter.storage.reset()


def within(item: RateLimitItem, *key: str) -> bool:
    """Whether one more hit would stay within the limit, without spending it (True if the
    store is unreachable: fail open, as ``hit``)."""
    limits: Limits = current_app.extensions[EXTENSION]
    if time.monotonic() < limits.down_until:
        return True
    try:
        return limits.limiter.test(item, *key)
    except Exception as err:  # noqa: BLE001 — as in hit
        limits.failed(err)
        return True


def clear(item: RateLimitItem, *key: str) -> None:
    """Forget the count of one key (a good sign-in ends its address's failures)."""
    limits: Limits = current_app.extensions[EXTENSION]
    try:
        limits.limiter.clear(item, *key)
    except Exception as err:  # noqa: BLE001 — as in hit
        limits.failed(err)
