"""What every newly stored batch of ratings starts once it is committed, whichever door it
came in by (device API, the citizen's page, the exchange's inbound): routing of the bad
ones, the hot spots' term counts and the suspicious-rating rules. One list, so a new door
cannot forget one of them — and the catch-up sweep that does the counts and the rules
itself for ratings whose tasks never ran (a broker down at intake)."""
from __future__ import annotations

import logging
from datetime import timedelta
from itertools import takewhile

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Rating, SuspiciousMark, SweepWatermark, conflict
from models.types import utcnow
from service import dispatch, pending
from service.insights import counting
from service.ratings.intake import Outcome, route_created
from service.suspicious import rules

log = logging.getLogger(__name__)

WATERMARK = "after_commit"
CHUNK = 2000  # ratings passed per transaction of the catch-up


def send_tasks(outcomes: list[Outcome], bodies: list, request_id: str | None = None) -> None:
    """Send the tasks of a committed batch; ``bodies`` are the stored bodies, in order.

    Routing, one task per bad rating; the term counts and the rules go to this process's
    queue (service/pending.py), which sends the batches of ``HCP_AFTER_COMMIT_LINGER_SECONDS``
    as one ``process_stored`` task (one message, one worker transaction; 0: one task per
    batch, sent here). Each send catches a broker that is down (the sweeps catch up later:
    ``sweep_unrouted`` for routing, ``catch_up`` for the term counts and the rules), so this
    never fails a rating that is stored.
    """
    route_created(outcomes, request_id)
    count_ids, check_ids = counting.to_count(outcomes, bodies), rules.to_check(outcomes)
    if not count_ids and not check_ids:
        return
    pending.hand_on("hcp_pending_ratings", _send_stored, count_ids, check_ids,
                    what="ratings left for the catch-up sweep")


def _send_stored(count_ids: list[int], check_ids: list[int]) -> None:
    dispatch.send("process_stored", count_ids, check_ids, retry=False)


def process(session: Session, count_ids: list[int], check_ids: list[int]) -> int:
    """The worker's side of ``send_tasks``: count the terms of ``count_ids`` and run the rules
    on ``check_ids``; the caller commits. Safe to run twice (claimed ids, unique marks).
    Returns the number of flags opened or grown."""
    counting.count(session, count_ids)
    return len(rules.check(session, check_ids)) if check_ids else 0


def _watermark(session: Session) -> int:
    """The catch-up's watermark, locked for this transaction (a second sweep waits)."""
    w = SweepWatermark.__table__
    session.execute(conflict.insert(session, w).values(name=WATERMARK, last_id=0).on_conflict_do_nothing())
    return session.scalar(select(w.c.last_id).where(w.c.name == WATERMARK).with_for_update())


def catch_up(session: Session, grace: timedelta, chunk: int = CHUNK) -> tuple[int, int, int]:
    """One step of the catch-up: the next ``chunk`` ratings after the watermark that were
    stored at least ``grace`` ago get their terms counted (``counting.count``: only those not
    counted yet) and the rules run (``rules.check``: only those without marks, i.e. never
    checked), then the watermark moves past them. The caller commits.

    Bounded (a chunk by primary key per step, in id order) and idempotent (the count claims
    each rating once, marks are unique, a flag never takes a rating twice). Default ratings
    (默认评价) are skipped: no task is sent for them either. Returns (ratings passed, ratings
    counted now, ratings checked now); 0 passed = caught up.
    """
    last = _watermark(session)
    r = Rating.__table__.c
    cutoff = utcnow() - grace
    rows = session.execute(select(r.id, r.received_at, r.is_default).where(r.id > last)
                           .order_by(r.id).limit(chunk)).all()
    # Stop at the first rating still within its grace: its tasks may yet run.
    ready = list(takewhile(lambda row: row.received_at <= cutoff, rows))
    if not ready:
        return 0, 0, 0
    ids = [row.id for row in ready if not row.is_default]
    counted = counting.count(session, ids)
    unchecked = []
    if ids and current_app.config["HCP_SETTINGS"].suspicious_rules:
        m = SuspiciousMark.__table__.c
        seen = set(session.scalars(select(m.rating_id).where(m.rating_id.in_(ids)).distinct()))
        unchecked = [i for i in ids if i not in seen]
        rules.check(session, unchecked)
    w = SweepWatermark.__table__
    session.execute(w.update().where(w.c.name == WATERMARK).values(last_id=ready[-1].id))
    if counted or unchecked:
        log.warning("catch-up: terms of %d ratings counted, %d ratings checked by the rules "
                    "(their tasks never ran)", counted, len(unchecked))
    return len(ready), counted, len(unchecked)
