"""Rectification cases (整改工单), their append-only history and the working-day calendar."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from models.org import Department, User
from models.ratings import Rating
from models.types import BigId, UTCDateTime, utcnow
from models.base import db

STATUS_LABELS = {
    "unassigned": "待分派",
    "assigned": "待核实",
    "rectifying": "整改中",
    "extension_review": "延期审核",
    "invalid_review": "无效差评审核",
    "explain_review": "解释说明审核",
    "feedback": "待反馈",
    "closed": "已办结",
}
OPEN_STATUSES = tuple(s for s in STATUS_LABELS if s != "closed")
OUTCOME_LABELS = {"rectified": "已整改", "explained": "解释说明", "invalid": "无效差评"}


class Case(db.Model):
    """One case per bad rating (``rating_id`` is unique), from routing to closure.

    ``callback_due`` is None for an anonymous rating (nobody to call back). An extension
    (延期) keeps the working days asked for in ``extension_days`` while under review and
    sets ``extended_at`` once approved (one per case; ``close_due`` is moved). The
    red/yellow card is not stored: ``service.cases.warnings.Cards`` computes it when asked.
    ``version`` is bumped by every action, so two concurrent actions cannot both apply.
    """

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    outcome: Mapped[str | None] = mapped_column(String(20))
    callback_due: Mapped[date | None] = mapped_column(Date)
    close_due: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contacted: Mapped[bool | None] = mapped_column(Boolean)
    satisfied: Mapped[bool | None] = mapped_column(Boolean)
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    extension_days: Mapped[int | None] = mapped_column(Integer)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    rating: Mapped[Rating] = relationship(backref=backref("case", uselist=False))
    department: Mapped[Department] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    history: Mapped[list[CaseEvent]] = relationship(order_by="CaseEvent.id", back_populates="case")

    __mapper_args__ = {"version_id_col": version}
    # SQLite reuses the highest rowid after a delete unless told not to; ids must never
    # come back, or a late task for an old id would act on a new row.
    __table_args__ = {"sqlite_autoincrement": True}


class CaseEvent(db.Model):
    """One entry of a case's history: who did what, when, from which state to which."""

    __tablename__ = "case_history"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSON)

    case: Mapped[Case] = relationship(back_populates="history")
    actor: Mapped[User | None] = relationship()


class Notification(db.Model):
    """A warning or digest issued once (unique ``key``), and each of its deliveries.

    An issue row (``kind`` like ``red:close`` or ``digest``) records the decision; its
    delivery rows (``kind`` ``webhook`` or ``email``, key extending the issue's key) are
    sent by a task each, which sets ``sent_at`` or counts ``attempts`` and ``last_error``.
    """

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    payload: Mapped[dict | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (UniqueConstraint("key", name="uq_notifications_key"), {"sqlite_autoincrement": True})


class CalendarOverride(db.Model):
    """An admin-entered holiday or make-up workday; it wins over the calendar library."""

    __tablename__ = "calendar_overrides"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "holiday" | "workday"
    note: Mapped[str | None] = mapped_column(String(200))
