"""Daily rollups of ratings and their cases, kept exact by database triggers.

Three grains of the same counters: ``stats_monthly`` and ``stats_daily`` per (month or
day, department, channel) answer summaries and department/channel/month breakdowns —
a year is a dozen months plus the odd days at either end; ``stats_daily_detail`` adds
item, window and staff number for the filters and breakdowns that need them. Triggers
(migration 0005) add a rating's counts in the transaction that inserts it and a case's
change in the transaction that changes it, so the rollups always equal a count over the
raw rows. Unknown parts of the key are stored as ``0``/``''`` rather than NULL, so the
unique key (and ``ON CONFLICT``) holds.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import db

# Counter columns, in one order shared by the triggers, the rebuild and the figures.
LEVEL_COUNTERS = ("level_1", "level_2", "level_3", "level_4", "level_5")
RATING_COUNTERS = LEVEL_COUNTERS + ("bad_real_name",)
CASE_COUNTERS = ("closed", "closed_rectified", "closed_explained", "closed_invalid",
                 "closed_on_time", "called_back", "satisfied_yes", "satisfied_known", "extended")
COUNTERS = RATING_COUNTERS + CASE_COUNTERS


class _Counters:
    """The counters both grains carry (see docs/figures.md for each definition)."""

    level_1: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level_2: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level_3: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level_4: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level_5: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bad_real_name: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    closed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    closed_rectified: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    closed_explained: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    closed_invalid: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    closed_on_time: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    called_back: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    satisfied_yes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    satisfied_known: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    extended: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class StatsDaily(_Counters, db.Model):
    """Counters per (rated_date, department, channel)."""

    __tablename__ = "stats_daily"
    rated_date: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)


class StatsMonthly(_Counters, db.Model):
    """Counters per (month, department, channel); ``month`` is the month's first day.

    A year's summary adds up a dozen months instead of 365 days; the days before the
    first and after the last whole month of a period come from ``stats_daily``.
    """

    __tablename__ = "stats_monthly"
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)


class StatsDailyDetail(_Counters, db.Model):
    """Counters per (rated_date, department, channel, item, window, staff number).

    ``item_id`` 0 = no item named, ``window``/``staff_no`` '' = none given.
    """

    __tablename__ = "stats_daily_detail"
    rated_date: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_no: Mapped[str] = mapped_column(String(64), primary_key=True)


class StatsMonthlyItem(db.Model):
    """Ratings per level per (month, department, item): the hot spots' anomaly test reads a
    year per item from a dozen months instead of every day of ``stats_daily_detail``.

    Rating counters only (cases do not change it); ``item_id`` 0 = no item named. Kept by
    its own insert trigger on ``ratings`` (migration 0024).
    """

    __tablename__ = "stats_monthly_item"
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level_1: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level_2: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level_3: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level_4: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    level_5: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class StatsOpen(db.Model):
    """Open cases counted per their rating's detail key, closure deadline and next deadline.

    The "now" figures (open, past the closure deadline, red, yellow) add these up
    instead of joining every open case to its rating; red and yellow are computed from
    ``deadline``/``due`` for the day asked (``service.cases.warnings.Cards``), never
    stored. Rows whose count fell to zero stay until ``hcp stats rebuild``; a partial
    index skips them.
    """

    __tablename__ = "stats_open"
    rated_date: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    close_due: Mapped[date] = mapped_column(Date, primary_key=True)
    deadline: Mapped[str] = mapped_column(String(8), primary_key=True)  # "callback" | "close"
    due: Mapped[date] = mapped_column(Date, primary_key=True)  # the next deadline's date
    open_cases: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        Index("ix_stats_open_rated_date", "rated_date", postgresql_where=text("open_cases <> 0"),
              sqlite_where=text("open_cases <> 0")),
    )
