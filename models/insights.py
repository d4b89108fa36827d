"""Hot spots: daily counts of the terms of comments, tags and reason labels (SPEC §10).

``insight_terms`` counts, per (local rating date, department, item, term), the ratings
whose text holds the term and how many of them were bad. The worker adds a stored
batch's counts (service/insights/counting.py); ``insight_counted`` holds the id of every
rating counted, so a task delivered twice counts nothing twice, and ``hcp insights
rebuild`` / ``check`` recount from the raw rows.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import db
from models.types import BigId


class InsightTerm(db.Model):
    """Ratings holding ``term`` per (rated_date, department_id, item_id); ``item_id`` 0 = none."""

    __tablename__ = "insight_terms"
    rated_date: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(32), primary_key=True)
    ratings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bad: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # The hot spots sum a period by term; the primary key already leads with the date.
    __table_args__ = (Index("ix_insight_terms_term_date", "term", "rated_date"),)


class InsightTermMonthly(db.Model):
    """The same counts per (month, department_id, term), all items together; ``month`` is
    the month's first day. A year's hot spots add up a dozen months, not 365 days × items."""

    __tablename__ = "insight_terms_monthly"
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(32), primary_key=True)
    ratings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bad: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class InsightCounted(db.Model):
    """A rating whose terms are in ``insight_terms`` (ratings without text never are)."""

    __tablename__ = "insight_counted"
    rating_id: Mapped[int] = mapped_column(BigId, primary_key=True)
