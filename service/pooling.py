"""Pooled PostgreSQL connections: ping one on checkout only when it sat idle a while; the
autocommit engine of single-statement writes (``intake_engine``).

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
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine

from config.settings import process_settings


INTAKE_ENGINE = "hcp_intake_engine"


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
    """The engine the rating intake and the first PUT of an application run on: in
    autocommit on PostgreSQL.

    Each writes with exactly one statement (one ``INSERT … ON CONFLICT`` for a whole
    batch, one ``WITH … INSERT`` for an application), which is atomic on its own, and its
    reads see the latest committed rows just as they would inside a READ COMMITTED
    transaction; BEGIN and COMMIT would add two round trips and change nothing else. It
    has a pool of its own (the app's engine options), its connections put in autocommit
    once when opened: sharing the app's pool cost every checkout an isolation level set,
    and every return its reset and a rollback (7 % of a PUT /projects' web CPU). On SQLite
    it is the app's engine, whose transactions are single statements' anyway.
    """
    from flask import current_app

    from service.extensions import db

    engine = current_app.extensions.get(INTAKE_ENGINE)
    if engine is None:
        engine = db.engine
        if engine.dialect.name == "postgresql":
            # Nothing to reset on return: no statement of an autocommit connection leaves a transaction open.
            engine = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None,
                                   **current_app.config["SQLALCHEMY_ENGINE_OPTIONS"])
            ping_idle_connections(engine)
        # Threads asking at once each make one (no connection yet); all keep the first.
        engine = current_app.extensions.setdefault(INTAKE_ENGINE, engine)
    return engine


@contextmanager
def driver_connection() -> Iterator:
    """PostgreSQL: the psycopg connection of a pooled ``intake_engine`` connection (autocommit),
    for one statement written in SQL, returned to the pool afterwards.

    It skips SQLAlchemy's Connection and execution context (building them and the result
    was a sixth of a PUT /projects' view) but keeps its pool: the same checkout, the same
    ping of a connection that sat idle. A psycopg error leaves as SQLAlchemy's own
    (``OperationalError`` and the rest, so the app's 503 and 4xx handlers answer as for any
    statement), and a connection it broke is discarded, not pooled again. A lost connection
    (a restarted or terminated server) discards the whole pool, as SQLAlchemy does for its
    own statements: the others went with it, and each would otherwise fail one request.
    """
    import psycopg

    engine = intake_engine()
    fairy = engine.raw_connection()
    try:
        yield fairy.driver_connection
    except psycopg.Error as err:
        lost = engine.dialect.is_disconnect(err, fairy.driver_connection, None)
        if lost or isinstance(err, psycopg.OperationalError):
            fairy.invalidate(err)
        if lost:
            engine.dispose()
        raise exc.DBAPIError.instance(None, None, err, psycopg.Error) from err
    finally:
        fairy.close()
