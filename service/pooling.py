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

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

from config.settings import process_settings


def ping_idle_connections(engine: Engine, idle_seconds: float | None = None) -> None:
    if idle_seconds is None:
        idle_seconds = process_settings().db_ping_idle_seconds

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


def intake_engine() -> Engine:
    """The engine the rating intake runs on: in autocommit on PostgreSQL.

    The intake writes with exactly one statement (one ``INSERT … ON CONFLICT`` for a
    whole batch), which is atomic on its own, and its reads see the latest committed
    rows just as they would inside a READ COMMITTED transaction; BEGIN and COMMIT would
    add two round trips to every rating and change nothing else. It shares the app's
    pool (SQLAlchemy sets autocommit on checkout and takes it off on return). On SQLite
    it is the app's engine, whose transactions are single statements' anyway.
    """
    from flask import current_app

    from service.extensions import db

    engine = current_app.extensions.get("hcp_intake_engine")
    if engine is None:
        engine = db.engine
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        current_app.extensions["hcp_intake_engine"] = engine
    return engine
