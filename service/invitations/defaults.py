"""Default ratings (默认评价, SPEC §7): invitations unused until they expire become ratings
of HCP_DEFAULT_RATING_LEVEL, channel ``default``, ``is_default`` true.

In batches: the ids of up to ``batch`` unsettled, expired invitations, then one
``INSERT … SELECT`` of their ratings and one UPDATE marking them settled, in one
transaction per batch. A rating's ``client_id`` is ``invitation-{id}-1`` — the same the
citizen's page uses — and ``ON CONFLICT DO NOTHING`` on it makes the sweep idempotent:
run twice, run beside a citizen's rating, or killed mid-batch (the transaction rolls back
and the next run starts again), there is never a second first rating for an invitation.
"""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from models import Device, Invitation, Project, is_bad
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


def run_batch(session: Session, now: datetime | None = None, batch: int = BATCH) -> tuple[int, int]:
    """One batch: (invitations settled, default ratings made). The caller commits."""
    settings = current_app.config["HCP_SETTINGS"]
    now = now or utcnow()
    ids = list(session.scalars(select(Invitation.id).where(Invitation.settled_at.is_(None),
                                                           Invitation.expires_at <= now)
                               .order_by(Invitation.expires_at, Invitation.id).limit(batch)))
    if not ids:
        return 0, 0
    # The departments' system devices of channel default, made before the INSERT needs them.
    departments = session.scalars(select(Project.department_id).distinct().join(
        Invitation, Invitation.project_id == Project.id).where(Invitation.id.in_(ids)))
    have = set(session.scalars(select(Device.department_id).where(
        Device.channel == "default", Device.name == SYSTEM_NAMES["default"])))
    for department_id in set(departments) - have:
        system_device(session, department_id, "default")
    dialect = session.get_bind().dialect.name
    level = settings.default_rating_level
    ids_param, now_param = bindparam("ids", expanding=True), bindparam("now", type_=UTCDateTime())
    made = session.execute(
        text(_insert_sql(dialect)).bindparams(ids_param, now_param),
        {"ids": ids, "level": level, "negative": is_bad(level), "now": now,
         "device_name": SYSTEM_NAMES["default"], "true": True, "false": False}).rowcount
    outbox.queue_invitation_ratings(session, ids, now)  # their 上报 records, in this transaction
    session.execute(text("UPDATE invitations SET settled_at = :now WHERE id IN :ids")
                    .bindparams(ids_param, now_param), {"ids": ids, "now": now})
    return len(ids), made


def run(session: Session, now: datetime | None = None, batch: int = BATCH) -> int:
    """Every due invitation, batch by batch, each committed; the number of ratings made."""
    total = 0
    while True:
        settled, made = run_batch(session, now, batch)
        session.commit()
        total += made
        if settled == 0:
            return total
