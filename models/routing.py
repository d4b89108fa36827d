"""The routing sweep's memory: which unrouted bad ratings it resent, and when next."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.types import BigId, UTCDateTime
from models.base import db


class RouteResend(db.Model):
    """One row per bad rating the sweep has resent to routing while it had no case.

    Without it every sweep re-enqueued the whole backlog: with workers slower than the
    intake (or blocked), a sweep every few seconds sent each waiting rating again and
    again, and the queue grew faster than the workers could empty it. Now a rating is
    resent after the grace period, then after twice that, four times, … (capped).
    """

    __tablename__ = "route_resends"
    rating_id: Mapped[int] = mapped_column(BigId, ForeignKey("ratings.id"), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SweepWatermark(db.Model):
    """How far a sweep that walks the ratings in id order has gone (``last_id``), by name.

    ``after_commit``: the catch-up of the term counts and suspicious rules of ratings whose
    tasks never ran (service/ratings/after_commit.py ``catch_up``).
    """

    __tablename__ = "sweep_watermarks"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigId, default=0)
