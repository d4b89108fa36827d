"""Small values every process of a deployment shares, in the Redis of HCP_REDIS_URL: the
flags of coalesced tasks (service.dispatch) and the integration clients' version
(service.auth.clients). Keys are prefixed with HCP_INSTANCE.

None of them is needed for correctness: without Redis (HCP_REDIS_URL unset, the embedded
deployment) or while it fails, ``call`` answers its ``unavailable`` value and the callers
do without — a task sent per call, a client looked up on every request. A failure is
logged once and Redis is left alone for ``RETRY_AFTER`` seconds, so an outage costs no
request a timeout.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import current_app

log = logging.getLogger(__name__)

EXTENSION = "hcp_shared_redis"
RETRY_AFTER = 5.0  # seconds without asking Redis after it failed


class SharedRedis:
    """One app's client of HCP_REDIS_URL and what it knows of its health.

    ``call`` hands each thread a client of its own holding one connection of the pool:
    the two small commands of a request (the clients' version, a batch flag) then skip the
    pool's checkout and return, which in redis-py cost as much as the command (a readiness
    poll of the socket, locks, bookkeeping; ~4 % of a PUT /projects' web CPU). A command
    that fails drops that connection; the next one opens it again.
    """

    def __init__(self, url: str | None, instance: str):
        self.redis = None
        if url:
            import redis

            self.redis = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.instance = instance
        self.down_until = 0.0
        self._threads = threading.local()

    def _own(self):
        """This thread's client (made on its first call: it connects, inside ``call``'s guard)."""
        client = getattr(self._threads, "client", None)
        if client is None:
            import redis

            client = self._threads.client = redis.Redis(connection_pool=self.redis.connection_pool,
                                                        single_connection_client=True)
        return client

    def key(self, name: str) -> str:
        return f"{self.instance}:{name}"

    def call(self, fn, unavailable=None):
        """``fn(redis)``, or ``unavailable`` when there is no Redis or it is failing (logged)."""
        if self.redis is None or time.monotonic() < self.down_until:
            return unavailable
        try:
            return fn(self._own())
        except Exception as err:  # noqa: BLE001 — any Redis failure: the caller does without
            self.down_until = time.monotonic() + RETRY_AFTER
            log.warning("shared Redis unreachable (%s: %s); done without it for %.0f s",
                        type(err).__name__, err, RETRY_AFTER)
            return unavailable


def shared() -> SharedRedis:
    """This app's SharedRedis (made on first use, in the process that uses it)."""
    found = current_app.extensions.get(EXTENSION)
    if found is None:
        settings = current_app.config["HCP_SETTINGS"]
        found = current_app.extensions[EXTENSION] = SharedRedis(settings.redis_url, settings.instance)
    return found
