"""Suspicious ratings (疑似刷评 / 恶意差评, SPEC §10): the rules' marks, the flags and their history.

``suspicious_marks`` is the rules' bounded state: one row per (rule, key, window, rating)
for the windows still open (a device's burst window, a phone's or a comment's day), deleted
once ``expires_at`` passes — never a scan of the ratings' history. A window holding more
marks than its rule allows opens a ``suspicious_flags`` row per department, whose ratings
are in ``suspicious_flag_ratings``; every change of a flag is a ``suspicious_flag_events``
row (who, when, from, to, note), never rewritten.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import db
from models.org import Department, User
from models.types import BigId, UTCDateTime, utcnow

RULES = ("burst", "phone", "comment", "project")
RULE_LABELS = {"burst": "设备连续评价过快", "phone": "同一手机号当日评价过多",
               "comment": "大量相同评价内容", "project": "办件受理前的评价"}
FLAG_STATES = ("open", "confirmed", "dismissed")
FLAG_STATE_LABELS = {"open": "待审核", "confirmed": "已确认（已剔除）", "dismissed": "已驳回"}


class SuspiciousMark(db.Model):
    """A rating counted in one window of one rule; the count is the number of rows."""

    __tablename__ = "suspicious_marks"
    rule: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window: Mapped[str] = mapped_column(String(32), primary_key=True)
    rating_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The flag the window's ratings go to once it is over its threshold (e.g. device:7@2026-11-03).
    group_key: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # By rating: the catch-up sweep asks which ratings the rules have seen (migration 0025).
    __table_args__ = (Index("ix_suspicious_marks_expires_at", "expires_at"),
                      Index("ix_suspicious_marks_rating_id", "rating_id"))


class SuspiciousFlag(db.Model):
    """A group of ratings one rule found suspicious, in one department, and its decision.

    A group decided once and then joined by more ratings gets a new flag (``generation`` + 1),
    so a supervisor never sees their decision widened behind their back.
    """

    __tablename__ = "suspicious_flags"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(String(16))
    group_key: Mapped[str] = mapped_column(String(120))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    # What the group has in common, for the queue: a device's name, a masked phone, the
    # comment's text (cut short), a 办件编号. Never a clear phone number.
    subject: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Who confirmed (the restore must be someone else: four eyes).
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    department: Mapped[Department] = relationship()
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    confirmed_by: Mapped[User | None] = relationship(foreign_keys=[confirmed_by_id])
    events: Mapped[list["SuspiciousFlagEvent"]] = relationship(
        order_by="SuspiciousFlagEvent.id", back_populates="flag")

    __table_args__ = (UniqueConstraint("rule", "group_key", "department_id", "generation"),
                      {"sqlite_autoincrement": True})


class SuspiciousFlagRating(db.Model):
    """A rating of a flag."""

    __tablename__ = "suspicious_flag_ratings"
    flag_id: Mapped[int] = mapped_column(ForeignKey("suspicious_flags.id"), primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), primary_key=True, index=True)


class SuspiciousFlagEvent(db.Model):
    """One change of a flag: opened (by a rule, no actor), confirmed, dismissed, restored."""

    __tablename__ = "suspicious_flag_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("suspicious_flags.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    ratings: Mapped[int] = mapped_column(Integer, default=0)  # ratings added, excluded or restored

    flag: Mapped[SuspiciousFlag] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()

    __table_args__ = ({"sqlite_autoincrement": True},)
