"""Per-device rate limits, counted with ``limits`` in Redis (in process memory when embedded).

Each app keeps its own counter store in ``app.extensions``, so two apps in one process
(a test deployment beside the suite's own) never count in each other's Redis.
"""
from __future__ import annotations

import functools

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

EXTENSION = "hcp_rate_limits"


def init_app(app: Flask) -> None:
    settings = app.config["HCP_SETTINGS"]
    uri = settings.redis_url or "memory://"
    # A Redis that hangs must not hold a rating for long: the caller fails open.
    options = {"socket_connect_timeout": 1, "socket_timeout": 1} if uri.startswith("redis") else {}
    app.extensions[EXTENSION] = FixedWindowRateLimiter(storage_from_string(uri, **options))


@functools.lru_cache(maxsize=256)
def limit(text: str) -> RateLimitItem:
    """``600/minute`` parsed once per distinct text."""
    return parse(text)


def hit(item: RateLimitItem, *key: str) -> float | None:
    """Count one hit; ``None`` if within the limit, else the epoch second its window resets."""
    limiter: FixedWindowRateLimiter = current_app.extensions[EXTENSION]
    if limiter.hit(item, *key):
        return None
    return limiter.get_window_stats(item, *key).reset_time


def reset() -> None:
    """Forget every count of the current app (tests start each case from zero)."""
    current_app.extensions[EXTENSION].storage.reset()
