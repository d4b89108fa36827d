"""Pooled PostgreSQL connections: ping one on checkout only when it sat idle a while.

``pool_pre_ping`` pings on every checkout — one more round trip on every rating. Under
load a connection goes back to the pool and out again within milliseconds, and a
connection that just answered a query needs no ping; one that sat idle (across a
database restart or a firewall timeout, say) does. So a connection is pinged when it
was last returned more than ``HCP_DB_PING_IDLE_SECONDS`` (default 2) ago. A connection
that breaks mid-request still gives the client 503 with Retry-After, and SQLAlchemy then
replaces every connection of the pool.
"""
from __future__ import annotations

import os
import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine


def ping_idle_connections(engine: Engine, idle_seconds: float | None = None) -> None:
    if idle_seconds is None:
        idle_seconds = float(os.environ.get("HCP_DB_PING_IDLE_SECONDS", "2"))

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_conn, record):
        record.info["hcp_returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, proxy):
        returned = record.info.get("hcp_returned_at")
        if returned is not None and time.monotonic() - returned < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as err:  # noqa: BLE001 — any failure means: use a new connection
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError(f"stale pooled connection: {err}") from err
