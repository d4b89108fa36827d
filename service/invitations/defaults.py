"""Default ratings (默认评价, SPEC §7): invitations unused until they expire become ratings
of HCP_DEFAULT_RATING_LEVEL, channel ``default``, ``is_default`` true.

In batches of up to ``batch`` unsettled, expired invitations, one transaction each. The
unsettled ones are the rows of ``invitations_unsettled`` (models.UnsettledInvitation: the
sweep's queue, keyed by expiry and id); settling one deletes its row, which changes no
index (marking the invitation itself rewrote it into all of its indexes: half the time at
1 M). On PostgreSQL a batch is one statement: the due rows locked ``FOR UPDATE SKIP
LOCKED`` (concurrent sweeps take different ones) and deleted, their ratings inserted and
their 上报 records queued, as data-modifying CTEs — no id list travels to the client and
back (an ``IN`` list of 5,000 ids cost more than the insert itself); the batch's rows are
read off the queue's primary key in its order, its applications by primary key (a
LATERAL lookup), since a hash join would read every application once per batch. On
SQLite (one writer) the batch's ids are read, then one ``INSERT … SELECT`` of their
ratings and one DELETE.
The departments' system devices of channel default are made once per run, before the
batches need them. A rating's ``client_id`` is ``invitation-{id}-1`` — the same the
citizen's page uses — and a unique index admits one rating per (invitation, assessment
number); ``ON CONFLICT DO NOTHING`` on both makes the sweep idempotent:
run twice, run beside a citizen's rating, or killed mid-batch (the transaction rolls back
and the next run starts again), there is never a second first rating for an invitation.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.orm import Session

from models import Device, Project, UnsettledInvitation, is_bad
from models.types import UTCDateTime, utcnow
from service.exchange import outbox
from service.invitations.rate import SYSTEM_NAMES, system_device
from service.stats.rollup import closed_day_sql

BATCH = 5000


def _insert_sql(dialect: str) -> str:
    client_id = "'invitation-' || CAST(i.id AS VARCHAR) || '-1'"
    return f"""
INSERT INTO ratings (client_id, body_hash, device_id, department_id, item_id, channel, "window", level,
                     negative, rated_at, rated_date, received_at, project_no, staff_no, real_name,
                     invitation_id, assess_number, is_default)
SELECT {client_id}, 'default', (SELECT min(d.id) FROM devices d WHERE d.department_id = p.department_id
                                AND d.channel = 'default' AND d.name = :device_name),
       p.department_id, p.item_id, 'default', NULL, :level, :negative, i.expires_at,
       {closed_day_sql(dialect, 'i.expires_at')}, :now, p.project_no, p.staff_no, :false,
       i.id, 1, :true
FROM invitations i JOIN projects p ON p.id = i.project_id
WHERE i.id IN :ids
  AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.invitation_id = i.id AND r.assess_number = 1)
ON CONFLICT DO NOTHING"""


# PostgreSQL: one batch as one statement. ``{created}`` is the ratings' INSERT … RETURNING
# (wrapped by the outbox when it is on); the answer is (made, settled, the last key taken).
# A run goes on after the key its last batch took (:after_at, :after_id): the queue rows
# the run deleted stay in the primary key until vacuum, and starting each batch from the
# front would walk over all of them again (batch k over k × 5,000 dead entries).
_PG_DUE = """
due AS (DELETE FROM invitations_unsettled
        WHERE ctid = ANY (ARRAY(SELECT ctid FROM invitations_unsettled
                                WHERE expires_at <= :now AND (expires_at, invitation_id) > (:after_at, :after_id)
                                ORDER BY expires_at, invitation_id LIMIT :batch FOR UPDATE SKIP LOCKED))
        RETURNING invitation_id AS id, project_id, expires_at)"""
_PG_LAST = ("(SELECT count(*) FROM due), (SELECT expires_at FROM due ORDER BY expires_at DESC, id DESC LIMIT 1), "
            "(SELECT id FROM due ORDER BY expires_at DESC, id DESC LIMIT 1)")
# Before every key: no invitation expires before 2000 (service/projects/schemas.py).
_FIRST_KEY = (datetime(1970, 1, 1, tzinfo=timezone.utc), 0)
# No NOT EXISTS here: the unique (invitation_id, assess_number) index and the shared
# client_id make ON CONFLICT skip an invitation the citizen rated at the last second.
_PG_INSERT = """
INSERT INTO ratings (client_id, body_hash, device_id, department_id, item_id, channel, "window", level,
                     negative, rated_at, rated_date, received_at, project_no, staff_no, real_name,
                     invitation_id, assess_number, is_default)
SELECT 'invitation-' || CAST(due.id AS VARCHAR) || '-1', 'default', sd.id, p.department_id, p.item_id,
       'default', NULL, :level, :negative, due.expires_at, {rated_date}, :now, p.project_no, p.staff_no, false,
       due.id, 1, true
FROM due CROSS JOIN LATERAL (SELECT department_id, item_id, project_no, staff_no FROM projects
                             WHERE id = due.project_id LIMIT 1) p  -- LIMIT: kept a lookup, not a hash join
JOIN (SELECT department_id, min(id) AS id FROM devices WHERE channel = 'default' AND name = :device_name
      GROUP BY department_id) sd ON sd.department_id = p.department_id
ON CONFLICT DO NOTHING
RETURNING id, received_at""".format(rated_date=closed_day_sql("postgresql", "due.expires_at"))


def _pg_batch_sql() -> tuple[str, dict]:
    """The batch's statement and its parameters beyond the batch's own (the code tables of
    HCP_EXCHANGE_PROFILE, when the outbox records are stored coded: outbox.pg_rating_cte)."""
    answer = f"count(*), {_PG_LAST}"
    if outbox.enabled():
        made = outbox.coding(channel="default")
        # "WITH created AS (…), queued AS (…) SELECT …": the due CTE goes first.
        sql = "WITH" + _PG_DUE + "," + outbox.pg_rating_cte(_PG_INSERT, answer, made)[len("WITH"):]
        return sql, {} if made is None else {"hcp_codes": made.codes}
    return f"WITH{_PG_DUE}, created AS ({_PG_INSERT}) SELECT {answer} FROM created", {}


def ensure_devices(session: Session, now: datetime) -> None:
    """The system device of channel default of every department with due invitations."""
    due = (select(Project.department_id).distinct()
           .where(Project.id.in_(select(UnsettledInvitation.project_id).where(UnsettledInvitation.expires_at <= now))))
    have = set(session.scalars(select(Device.department_id).where(
        Device.channel == "default", Device.name == SYSTEM_NAMES["default"])))
    for department_id in set(session.scalars(due)) - have:
        system_device(session, department_id, "default")


def run_batch(session: Session, now: datetime | None = None, batch: int = BATCH,
              devices_ready: bool = False, after: tuple[datetime, int] | None = None) -> tuple[int, int, tuple | None]:
    """One batch: (invitations settled, default ratings made, the last queue key taken). The
    caller commits. ``after``: the key the previous batch of this run ended at (PostgreSQL;
    SQLite deletes its rows outright)."""
    settings = current_app.config["HCP_SETTINGS"]
    now = now or utcnow()
    if not devices_ready:
        ensure_devices(session, now)
    level = settings.default_rating_level
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        after_at, after_id = after or _FIRST_KEY
        sql, coding = _pg_batch_sql()
        made, settled, last_at, last_id = session.execute(
            text(sql).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("after_at", type_=UTCDateTime())),
            {"now": now, "batch": batch, "level": level, "negative": is_bad(level),
             "device_name": SYSTEM_NAMES["default"], "after_at": after_at, "after_id": after_id, **coding}).one()
        return settled, made, (last_at, last_id) if settled else after
    ids = list(session.scalars(select(UnsettledInvitation.invitation_id).where(UnsettledInvitation.expires_at <= now)
                               .order_by(UnsettledInvitation.expires_at, UnsettledInvitation.invitation_id)
                               .limit(batch)))
    if not ids:
        return 0, 0, after
    ids_param, now_param = bindparam("ids", expanding=True), bindparam("now", type_=UTCDateTime())
    made = session.execute(
        text(_insert_sql(dialect)).bindparams(ids_param, now_param),
        {"ids": ids, "level": level, "negative": is_bad(level), "now": now,
         "device_name": SYSTEM_NAMES["default"], "true": True, "false": False}).rowcount
    outbox.queue_invitation_ratings(session, ids, now)  # their 上报 records, in this transaction
    session.execute(delete(UnsettledInvitation).where(UnsettledInvitation.expires_at <= now,
                                                      UnsettledInvitation.invitation_id.in_(ids)))
    return len(ids), made, after


def run(session: Session, now: datetime | None = None, batch: int = BATCH) -> int:
    """Every due invitation, batch by batch, each committed; the number of ratings made."""
    now = now or utcnow()
    ensure_devices(session, now)
    total, after = 0, None
    while True:
        settled, made, after = run_batch(session, now, batch, devices_ready=True, after=after)
        session.commit()
        total += made
        if settled == 0:
            return total
