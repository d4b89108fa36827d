"""Storing ratings exactly once and handing bad ones to routing.

One code path serves the single and the batch endpoint: validated bodies become rows,
inserted with ``INSERT … ON CONFLICT (client_id) DO NOTHING RETURNING``; a row not
returned already existed, and its body hash tells a replay (duplicate) from a conflict.
"""
from __future__ import annotations

import json
import logging
from collections import namedtuple
from dataclasses import dataclass
from datetime import timezone

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from models import Rating, ServiceItem, is_bad
from models.types import utcnow
from service import dispatch
from service.exchange import outbox
from models.clock import local_date
from service.pooling import intake_engine
from service.privacy import blind_index, body_digest, encrypt, mask_name, mask_phone
from service.ratings.grouping import InsertGroup
from service.reasons.table import offered as offered_reasons, problems as reason_problems

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What happened to one submitted rating."""

    client_id: str | None
    status: str  # created | duplicate | conflict | invalid
    rating: dict | None = None  # {id, client_id, level, negative, received_at}
    errors: dict | None = None


def _answer(row) -> dict:
    return {"id": row.id, "client_id": row.client_id, "level": row.level,
            "negative": row.negative, "received_at": row.received_at}


def _canonical(body: dict) -> dict:
    """The body as validated, in a form whose hash does not depend on key order or offsets."""
    out = dict(body)
    out["client_id"] = str(body["client_id"])
    out["rated_at"] = body["rated_at"].astimezone(utcnow().tzinfo).isoformat()
    return out


def _row(device, body: dict, item, digest: str, now, request_id) -> dict:
    rater = body.get("rater") or {}
    real = bool(rater.get("real_name"))
    return {
        "client_id": str(body["client_id"]),
        "body_hash": digest,
        "device_id": device.id,
        "department_id": item.department_id if item else device.department_id,
        "item_id": item.id if item else None,
        "channel": device.channel,
        "window": device.window,
        "level": body["level"],
        "negative": is_bad(body["level"]),
        "rated_at": body["rated_at"],
        "rated_date": local_date(body["rated_at"]),
        "received_at": now,
        "project_no": body.get("project_no"),
        "staff_no": body.get("staff_no"),
        "tags": body.get("tags"),
        "reasons": body.get("reasons"),
        "comment": body.get("comment"),
        "real_name": real,
        "rater_name_enc": encrypt(rater.get("name")) if real else None,
        "rater_phone_enc": encrypt(rater.get("phone")) if real else None,
        "rater_name_masked": mask_name(rater.get("name")) if real else None,
        "rater_phone_masked": mask_phone(rater.get("phone")) if real else None,
        "rater_phone_index": blind_index(rater.get("phone")) if real else None,
        "request_id": request_id,
        # Set only by hcp's own callers (the citizen page); RatingIn never lets them in.
        "invitation_id": body.get("invitation_id"), "assess_number": body.get("assess_number", 1),
        "followup_of": body.get("followup_of"), "is_default": False,
    }


RATINGS = Rating.__table__
_ANSWER = (RATINGS.c.id, RATINGS.c.client_id, RATINGS.c.level, RATINGS.c.negative, RATINGS.c.received_at)


# The embedded (SQLite) path: one Core statement built once, rows passed as parameters,
# so SQLAlchemy finds it compiled in its cache.
_SQLITE_INSERT = sqlite.insert(RATINGS).on_conflict_do_nothing(index_elements=["client_id"]).returning(*_ANSWER)


def _pg_inserts() -> dict[tuple[bool, bool], str]:
    """PostgreSQL's INSERTs by (many rows?, with outbox records?): one row as scalars, many
    rows as one array per column.

    Many: ``INSERT … SELECT FROM unnest(%(client_id)s::varchar[], …) ON CONFLICT
    (client_id) DO NOTHING RETURNING …``. Its text never changes with the number of rows
    (so the driver parses and prepares it once), and 500 ratings travel as 22 array
    parameters instead of 11,000 scalar ones — the driver's placeholder parsing of the
    multi-row VALUES form was most of a batch's time in the profile. One row goes as
    plain scalars: dumping 22 one-element arrays cost more than the row itself. With the
    outbox, each is wrapped in a CTE that also writes the created ratings' outbox rows.
    """
    dialect = postgresql.dialect()
    # excluded_at is only ever set later, by a supervisor's decision (service/suspicious).
    columns = [c for c in RATINGS.columns if c.name not in ("id", "excluded_at")]
    names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in columns)
    scalars, arrays, selected = [], [], []
    for c in columns:
        kind = c.type.compile(dialect=dialect)
        quoted = dialect.identifier_preparer.quote(c.name)
        if kind == "JSON":  # no array-of-json parameter type: text in, json out
            scalars.append(f"%({c.name})s::text::json")
            arrays.append(f"%({c.name})s::text[]")
            selected.append(f"{quoted}::json")
        else:
            scalars.append(f"%({c.name})s::{kind}")
            arrays.append(f"%({c.name})s::{kind}[]")
            selected.append(quoted)
    answer = ", ".join(c.name for c in _ANSWER)
    tail = f"ON CONFLICT (client_id) DO NOTHING RETURNING {answer}"
    one = f"INSERT INTO ratings ({names}) VALUES ({', '.join(scalars)}) {tail}"
    many = (f"INSERT INTO ratings ({names}) SELECT {', '.join(selected)} "
            f"FROM unnest({', '.join(arrays)}) AS t({names}) {tail}")
    return {(False, False): one, (True, False): many,
            (False, True): outbox.pg_rating_cte(one, answer), (True, True): outbox.pg_rating_cte(many, answer)}


_PG_INSERTS = _pg_inserts()
_PG_CODED: dict[tuple[bool, outbox.pgcode.Coding], str] = {}


def _pg_insert(many: bool, report: bool) -> tuple[str, dict]:
    """The statement of ``_pg_inserts()`` by (many rows?, with outbox records?) and its
    parameters beyond the rows': with the outbox, each record stored coded when
    HCP_EXCHANGE_PROFILE is coded in SQL (outbox.pg_rating_cte), built once per coding."""
    made = outbox.coding() if report else None
    if made is None:
        return _PG_INSERTS[(many, report)], {}
    stmt = _PG_CODED.get((many, made))
    if stmt is None:
        plain = _PG_INSERTS[(many, False)]
        answer = ", ".join(c.name for c in _ANSWER)
        stmt = _PG_CODED[(many, made)] = outbox.pg_rating_cte(plain, answer, made, "%(hcp_codes)s", pyformat=True)
    return stmt, {"hcp_codes": made.codes}
_Created = namedtuple("_Created", [c.name for c in _ANSWER])
_JSON_COLUMNS = {c.name for c in RATINGS.columns if c.type.compile(dialect=postgresql.dialect()) == "JSON"}


def _json_text(value) -> str | None:
    """A JSON column's value as the text the statements cast to json."""
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _insert_rows(conn: Connection, rows: list[dict], report: bool | None = None) -> dict:
    """Insert ``rows`` (ON CONFLICT DO NOTHING) in one round trip; the created ones by client_id.

    With ``report`` (default: HCP_EXCHANGE_OUTBOX) each created rating gets its outbox
    record in the same transaction: in the same statement on PostgreSQL, in one more
    executemany on SQLite.
    """
    report = outbox.enabled() if report is None else report
    if conn.dialect.name != "postgresql":
        created = {r.client_id: r for r in conn.execute(_SQLITE_INSERT, rows)}
        if report:
            outbox.queue_ratings(conn, created.values())
        return created
    stmt, extra = _pg_insert(len(rows) > 1, report)
    if len(rows) == 1:
        params = {**rows[0], **{name: _json_text(rows[0][name]) for name in _JSON_COLUMNS}, **extra}
    else:
        params = {name: [row[name] for row in rows] for name in rows[0]}
        for name in _JSON_COLUMNS:
            params[name] = [_json_text(v) for v in params[name]]
        params.update(extra)
    result = conn.exec_driver_sql(stmt, params)
    # As UTCDateTime would give it back: an aware datetime in UTC.
    return {r.client_id: _Created(r.id, r.client_id, r.level, r.negative, r.received_at.astimezone(timezone.utc))
            for r in result}


_ITEMS = ServiceItem.__table__.c


def insert_group() -> InsertGroup | None:
    """This process's group commit for the intake engine; None where it does not apply.

    Only on PostgreSQL, whose intake runs in autocommit: a row another request inserts
    for this one is committed when that statement returns. (SQLite has one writer at a
    time anyway.)
    """
    from flask import current_app

    group = current_app.extensions.get("hcp_insert_group")
    if group is None and intake_engine().dialect.name == "postgresql":
        group = current_app.extensions.setdefault("hcp_insert_group", InsertGroup(_insert_rows))
    return group


def store(conn: Connection, device, bodies: list[dict | Outcome], request_id: str | None = None,
          group: InsertGroup | None = None, report: bool | None = None) -> list[Outcome]:
    """Store validated bodies for ``device``; return one Outcome per body, in order.

    ``device`` is a Device or anything with its id, department_id, channel and window.
    An element of ``bodies`` that is already an Outcome (a body that failed validation)
    is passed through. The caller commits, then routes the created bad ratings. With
    ``group`` (``insert_group()``, for an autocommit ``conn`` only) a single rating may
    share its INSERT with other requests'. Each created rating gets its 上报 outbox record
    in the same transaction (``report`` False: none — a rating the upstream platform itself
    sent down; None: as HCP_EXCHANGE_OUTBOX says).
    """
    outcomes: list[Outcome | None] = [b if isinstance(b, Outcome) else None for b in bodies]
    codes = {b["item_code"] for b in bodies if isinstance(b, dict) and b.get("item_code")}
    items = {}
    if codes:
        items = {i.code: i for i in conn.execute(
            select(_ITEMS.id, _ITEMS.code, _ITEMS.department_id).where(_ITEMS.code.in_(codes)))}

    # Read only when some body names reasons: most kiosks send none.
    reasons = offered_reasons(conn) if any(isinstance(b, dict) and b.get("reasons") for b in bodies) else {}

    now = utcnow()
    rows, first_of, digest_at = [], {}, {}
    for pos, body in enumerate(bodies):
        if outcomes[pos] is not None:
            continue
        cid = str(body["client_id"])
        code = body.get("item_code")
        if code and code not in items:
            outcomes[pos] = Outcome(cid, "invalid", errors={"item_code": [f"unknown service item {code}"]})
            continue
        wrong = reason_problems(reasons, body["level"], body["reasons"]) if body.get("reasons") else None
        if wrong:
            outcomes[pos] = Outcome(cid, "invalid", errors={"reasons": wrong})
            continue
        digest = digest_at[pos] = body_digest({**_canonical(body), "device": device.id})
        if cid in first_of:  # the same client_id twice in one batch: judged against the first
            continue
        first_of[cid] = pos
        rows.append(_row(device, body, items.get(code), digest, now, request_id))

    created = {}
    if rows:
        # In client_id order: two batches sharing client_ids then take their unique-index
        # entries in the same order, so neither waits for a row the other holds while
        # holding one it wants (PostgreSQL saw a deadlock, hence a 503, in a retry storm).
        rows.sort(key=lambda r: r["client_id"])
        if group is not None and len(rows) == 1 and report is None:
            created = group.insert_one(conn, rows[0])
        else:
            created = _insert_rows(conn, rows, report)

    digests = {r["client_id"]: r["body_hash"] for r in rows}
    missing = [cid for cid in digests if cid not in created]
    existing = {}
    if missing:
        existing = {r.client_id: r for r in conn.execute(
            select(Rating.id, Rating.client_id, Rating.level, Rating.negative, Rating.received_at,
                   Rating.body_hash).where(Rating.client_id.in_(missing)))}

    for pos, body in enumerate(bodies):
        if outcomes[pos] is not None:
            continue
        cid = str(body["client_id"])
        if first_of[cid] == pos and cid in created:
            outcomes[pos] = Outcome(cid, "created", _answer(created[cid]))
            continue
        first = created.get(cid)
        first_hash = digests[cid] if first is not None else existing[cid].body_hash
        first = first if first is not None else existing[cid]
        status = "duplicate" if digest_at[pos] == first_hash else "conflict"
        outcomes[pos] = Outcome(cid, status, _answer(first) if status == "duplicate" else None)
    return outcomes


def route_created(outcomes: list[Outcome], request_id: str | None = None) -> None:
    """After commit: send each newly created bad rating to the routing task.

    A broker that is down must not fail the intake — the rating is stored, and the
    beat sweep sends it again once the broker is back.
    """
    bad = [o.rating["id"] for o in outcomes if o.status == "created" and o.rating["negative"]]
    if not bad:
        return
    try:
        # One producer (one broker connection from the pool) for all of a batch's sends.
        with dispatch.producer() as producer:
            for rating_id in bad:
                try:
                    dispatch.send("route_rating", rating_id, retry=False, producer=producer,
                                  headers={"request_id": request_id})
                except Exception:  # noqa: BLE001 — the sweep resends; never lose the 201
                    log.warning("broker unavailable; rating %s left for the sweep", rating_id, exc_info=True)
    except Exception:  # noqa: BLE001 — no producer at all: the same, for every rating
        log.warning("broker unavailable; ratings %s left for the sweep", bad, exc_info=True)
