"""Running the exchange (SPEC §8): the outbox's state, requeueing, the offline export.

The one home of these for both ``hcp exchange …`` and the admin page 数据上报.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from models import OUTBOX_STATES, OutboxRecord
from models.clock import SHANGHAI
from models.types import utcnow
from service.exchange import profiles, records
from service.exchange.profiles import Held

EXPORT_CHUNK = 1000


@dataclass
class Status:
    counts: dict[str, int]
    oldest_pending: datetime | None
    now: datetime
    reasons: list[tuple[str, str, int]] = field(default_factory=list)  # (status, reason, records)

    @property
    def oldest_pending_seconds(self) -> float | None:
        return None if self.oldest_pending is None else max(0.0, (self.now - self.oldest_pending).total_seconds())


def status(session: Session, now: datetime | None = None, reasons: int = 20) -> Status:
    """Counts by state, the oldest pending record's time, and the commonest refusal reasons."""
    now = now or utcnow()
    counts = dict.fromkeys(OUTBOX_STATES, 0)
    by_state = session.execute(select(OutboxRecord.status, func.count()).group_by(OutboxRecord.status))
    counts.update({state: n for state, n in by_state})
    oldest = session.scalar(select(func.min(OutboxRecord.created_at)).where(OutboxRecord.status == "pending"))
    common = session.execute(
        select(OutboxRecord.status, OutboxRecord.reason, func.count().label("n"))
        .where(OutboxRecord.status.in_(("rejected", "held")))
        .group_by(OutboxRecord.status, OutboxRecord.reason).order_by(func.count().desc()).limit(reasons)).all()
    return Status(counts=counts, oldest_pending=oldest, now=now,
                  reasons=[(s, r or "", n) for s, r, n in common])


def requeue(session: Session, rejected: bool = False, now: datetime | None = None) -> int:
    """Make held records, and pending ones waiting out a backoff, due now (``rejected``: the
    rejected ones too); the number of records changed. The caller commits."""
    now = now or utcnow()
    states = ["held", "pending"] + (["rejected"] if rejected else [])
    result = session.execute(
        update(OutboxRecord)
        .where(OutboxRecord.status.in_(states),
               or_(OutboxRecord.status != "pending", OutboxRecord.due_at > now))
        .values(status="pending", due_at=now, attempts=0, reason=None)
        .execution_options(synchronize_session=False))
    return result.rowcount


def requeue_entry(rejected: bool, changed: int) -> dict:
    """The 操作日志's "after" of a requeue, from the console or the shell."""
    return {"包括被拒收": "是" if rejected else "否", "记录数": changed}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC moments an Asia/Shanghai calendar day starts and ends."""
    start = datetime.combine(day, time(0), tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


@dataclass
class Export:
    written: int = 0
    held: list[tuple[str, str]] = field(default_factory=list)  # (record id, why)


def export(session: Session, day: date, profile_name: str, area_code: str | None, out,
           report: Export | None = None) -> Export:
    """That day's records (created on the Asia/Shanghai date ``day``, whatever their state)
    as JSON lines in the profile's shape, written to ``out``; the ones it cannot code are
    listed in the answer, never written mis-coded. Changes nothing."""
    profile = profiles.load(profile_name)
    report = report or Export()
    for chunk in _chunks(session, *day_bounds(day)):
        neutral = records.neutral(session, chunk, area_code)
        for rec in chunk:
            try:
                line = records.shaped(profile, rec, neutral[rec.id])
            except Held as held:
                report.held.append((rec.record_id, str(held)))
                continue
            out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
            report.written += 1
    return report


def _chunks(session: Session, start: datetime, end: datetime) -> Iterator[list[OutboxRecord]]:
    after = 0
    while True:
        chunk = list(session.scalars(
            select(OutboxRecord).where(OutboxRecord.created_at >= start, OutboxRecord.created_at < end,
                                       OutboxRecord.id > after)
            .order_by(OutboxRecord.id).limit(EXPORT_CHUNK)))
        if not chunk:
            return
        yield chunk
        after = chunk[-1].id
        session.expunge_all()  # a day of a province's records need not stay in memory
