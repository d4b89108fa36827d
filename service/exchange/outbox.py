"""Writing outbox records in the caller's transaction (SPEC §8).

Ratings: the intake adds its rows to its own INSERT (service/ratings/intake.py: one
statement on PostgreSQL, one more executemany on SQLite); the default-rating sweep uses
``queue_invitation_ratings`` on SQLite and ``pg_rating_cte`` inside its one statement on
PostgreSQL. Cases: ``queue_case_close`` from the workflow when an
action closes a case. Nothing here commits.
"""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import Case, InboundSource, IntegrationClient, OutboxRecord, rating_record_id
from models.exchange import RATING_RECORD_PREFIX
from models.types import UTCDateTime

OUTBOX = OutboxRecord.__table__
_RATING_ROWS = insert(OUTBOX)


def enabled() -> bool:
    """HCP_EXCHANGE_OUTBOX: off for a deployment that never reports upward."""
    return current_app.config["HCP_SETTINGS"].exchange_outbox


def pg_rating_cte(insert_ratings: str, answer: str) -> str:
    """PostgreSQL: ``insert_ratings`` (an INSERT … RETURNING ``answer``) and the created
    ratings' outbox rows as one statement — one round trip, one transaction, also when
    the intake runs in autocommit or shares the statement with other requests."""
    return (f"WITH created AS ({insert_ratings}), queued AS ("
            f"INSERT INTO exchange_outbox (record_id, kind, rating_id, status, created_at, due_at, attempts) "
            f"SELECT '{RATING_RECORD_PREFIX}' || id, 'rating', id, 'pending', received_at, received_at, 0 "
            f"FROM created) SELECT {answer} FROM created")


def queue_ratings(conn: Connection, created) -> None:
    """SQLite: the outbox rows of the ratings just created (rows with ``id``, ``received_at``)."""
    rows = [{"record_id": rating_record_id(r.id), "kind": "rating", "rating_id": r.id, "status": "pending",
             "created_at": r.received_at, "due_at": r.received_at, "attempts": 0} for r in created]
    if rows:
        conn.execute(_RATING_ROWS, rows)


def queue_invitation_ratings(session: Session, invitation_ids: list[int], now: datetime) -> None:
    """The default ratings of these invitations, one INSERT … SELECT; a second run adds nothing."""
    if not enabled() or not invitation_ids:
        return
    session.execute(text(
        "INSERT INTO exchange_outbox (record_id, kind, rating_id, status, created_at, due_at, attempts) "
        f"SELECT '{RATING_RECORD_PREFIX}' || CAST(r.id AS VARCHAR), 'rating', r.id, 'pending', :now, :now, 0 "
        "FROM ratings r WHERE r.invitation_id IN :ids AND r.is_default ON CONFLICT DO NOTHING")
        .bindparams(bindparam("ids", expanding=True), bindparam("now", type_=UTCDateTime())),
        {"ids": invitation_ids, "now": now})


def _measures(case: Case) -> tuple[str | None, str | None]:
    """The cause and action of the closing: the rectification's measures, else the claim's reason."""
    for event in reversed(case.history):
        if event.action == "rectify" and event.data and "measures" in event.data:
            return event.data["measures"]["cause"], event.data["measures"]["action"]
        if event.action in ("propose_explain", "claim_invalid") and event.data:
            return event.data.get("reason"), None
    return None, None


def queue_case_close(session: Session, case: Case, now: datetime) -> None:
    """A case just closed: its result for upstream and, for an inbound rating, for its source.

    The record id carries the case's version before the closing action, so a case reopened
    and closed again is a new record, and the same closing is never two.
    """
    if not enabled():
        return
    with session.no_autoflush:  # the action is flushed once, by the caller: one version bump
        _queue_case_close(session, case, now)


def _queue_case_close(session: Session, case: Case, now: datetime) -> None:
    cause, action = _measures(case)
    payload = {"outcome": case.outcome, "cause": cause, "action": action, "contacted": case.contacted,
               "satisfied": case.satisfied, "closed_at": now.isoformat()}
    base = f"case-{case.id}-{case.version}"
    records = [OutboxRecord(record_id=base, kind="case", rating_id=case.rating_id, case_id=case.id,
                            created_at=now, due_at=now, payload=payload)]
    source = session.get(InboundSource, case.rating_id)
    if source is not None:
        callback = session.scalar(select(IntegrationClient.callback_url).where(
            IntegrationClient.id == source.client_id))
        sourced = {**payload, "source_id": source.source_id}
        if callback:
            records.append(OutboxRecord(record_id=f"{base}-c{source.client_id}", kind="case",
                                        rating_id=case.rating_id, case_id=case.id, client_id=source.client_id,
                                        created_at=now, due_at=now, payload=sourced))
        else:  # the source is the upstream platform itself: one record, with its id
            records[0].client_id, records[0].payload = source.client_id, sourced
    session.add_all(records)
