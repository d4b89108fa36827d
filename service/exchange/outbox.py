"""Writing outbox records in the caller's transaction (SPEC §8).

Ratings: the intake adds its rows to its own INSERT (service/ratings/intake.py: one
statement on PostgreSQL, one more executemany on SQLite); the default-rating sweep uses
``queue_invitation_ratings`` on SQLite and ``pg_rating_cte`` inside its one statement on
PostgreSQL. Cases: ``queue_case_close`` from the workflow when an
action closes a case. Nothing here commits.

Each record upstream is stored coded (``coded``: its JSON text in HCP_EXCHANGE_PROFILE, and
``coded_for``: what it was coded for, service/exchange/pgcode.py) on PostgreSQL: a rating's
by the SQL of its own statement (pgcode), a case's by Python's encoder in the closing's
transaction. So the push's claim reads stored text; one coded for another profile, area
code or epoch (a credit code changed since), held, or for a client, is coded when claimed.
SQLite stores none (its push codes in Python).
"""
from __future__ import annotations

import json
import re
from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import Case, InboundSource, IntegrationClient, OutboxRecord, rating_record_id
from models.exchange import RATING_RECORD_PREFIX
from models.types import UTCDateTime
from service.exchange import pgcode, profiles, records
from service.exchange.profiles import Held, UnknownProfile

OUTBOX = OutboxRecord.__table__
_RATING_ROWS = insert(OUTBOX)


def enabled() -> bool:
    """HCP_EXCHANGE_OUTBOX: off for a deployment that never reports upward."""
    return current_app.config["HCP_SETTINGS"].exchange_outbox


def coding(channel: str | None = None) -> pgcode.Coding | None:
    """HCP_EXCHANGE_PROFILE's SQL coding for HCP_AREA_CODE (pgcode.coding); None: none stored
    — also for ratings all of ``channel`` when the profile has no code for it (held anyway:
    the default sweep's under gbt39046 code nothing). A record stored uncoded is coded when
    claimed, so None is never wrong, only slower to send."""
    settings = current_app.config["HCP_SETTINGS"]
    made = pgcode.coding(settings.exchange_profile, settings.area_code)
    if made is not None and channel is not None:
        table = profiles.load(settings.exchange_profile).codes.get("channel")
        if table is not None and channel not in table:
            return None
    return made


def pg_rating_cte(insert_ratings: str, answer: str, made: pgcode.Coding | None = None,
                  codes_param: str = ":hcp_codes", pyformat: bool = False) -> str:
    """PostgreSQL: ``insert_ratings`` (an INSERT … RETURNING ``answer``) and the created
    ratings' outbox rows as one statement — one round trip, one transaction, also when
    the intake runs in autocommit or shares the statement with other requests. With
    ``made`` (coding()) each row stores its record coded (the caller binds ``codes_param``
    to ``made.codes``); ``pyformat``: the statement's other parameters are ``%(name)s``."""
    if made is None:
        return (f"WITH created AS ({insert_ratings}), queued AS ("
                f"INSERT INTO exchange_outbox (record_id, kind, rating_id, status, created_at, due_at, attempts) "
                f"SELECT '{RATING_RECORD_PREFIX}' || id, 'rating', id, 'pending', received_at, received_at, 0 "
                f"FROM created) SELECT {answer} FROM created")
    insert = re.split(r"\sRETURNING\s", insert_ratings)
    assert len(insert) == 2, "one RETURNING, last"
    coded, coded_for, codes = pgcode.stored(made, codes_param)
    queued = ("INSERT INTO exchange_outbox (record_id, kind, rating_id, status, created_at, due_at, attempts, coded, "
              f"coded_for) SELECT q.record_id, 'rating', q.r_id, 'pending', q.received_at, q.received_at, 0, {coded}, "
              f"{coded_for} FROM {pgcode.rating_rows('created')} CROSS JOIN {codes}")
    if pyformat:
        queued = queued.replace("%", "%%").replace(f"%%{codes_param[1:]}", codes_param)
    return f"WITH created AS ({insert[0]} RETURNING *), queued AS ({queued}) SELECT {answer} FROM created"


def pg_code_ratings(conn, rating_ids: list[int] | None = None) -> int:
    """PostgreSQL: code again the rating records of these ratings (all, when None) as their
    writers do; how many rows. For a record whose values were completed after its rating's
    statement (an inbound rating's source), and for loading a backlog."""
    made = coding()
    if made is None or conn.dialect.name != "postgresql" or rating_ids == []:
        return 0
    coded, coded_for, codes = pgcode.stored(made, ":hcp_codes")
    where = "" if rating_ids is None else " WHERE id = ANY(CAST(:ids AS bigint[]))"
    return conn.execute(text(
        f"UPDATE exchange_outbox o SET coded = {coded}, coded_for = {coded_for} "
        f"FROM {pgcode.rating_rows(f'(SELECT * FROM ratings{where})')} CROSS JOIN {codes} "
        "WHERE o.rating_id = q.r_id AND o.kind = 'rating'"),
        {"hcp_codes": made.codes, **({} if rating_ids is None else {"ids": rating_ids})}).rowcount


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
    if records[0].client_id is None:
        _code(session, records[0])
    session.add_all(records)


def _code(session: Session, record: OutboxRecord) -> None:
    """PostgreSQL: store ``record`` coded in HCP_EXCHANGE_PROFILE by Python's encoder (as the
    push would code it), unless it is held. The epoch is read before the values, so a credit
    code changed meanwhile leaves the record marked for another epoch (coded again)."""
    made = coding()
    if made is None or session.get_bind().dialect.name != "postgresql":
        return
    settings = current_app.config["HCP_SETTINGS"]
    epoch = session.scalar(text(pgcode.EPOCH[1:-1]))
    try:
        profile = profiles.load(settings.exchange_profile)
        values = records.neutral(session, [record], settings.area_code)[record.id]
        shaped = records.shaped(profile, record, values)
    except (Held, UnknownProfile):
        return
    record.coded = json.dumps(shaped, ensure_ascii=False, default=str)
    record.coded_for = f"{made.key}:{epoch}"
