"""Working-day deadlines on the Chinese calendar (holidays and 调休 make-up days).

A deadline is the end of the Nth working day after the day the rating was received, in
Asia/Shanghai. Admin overrides win; then chinese-calendar; for years it does not cover,
Monday–Friday.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import chinese_calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CalendarOverride
from models.clock import local_date


# HCP_DEADLINE_UNIT as every text says it: "还有 2 个工作日", "不足3天".
UNIT_LABELS = {"working": "个工作日", "natural": "天"}


def unit_label(unit: str | None = None) -> str:
    """The label of deadline unit ``unit`` (working | natural); by default the configured one."""
    if unit is None:
        from flask import current_app

        unit = current_app.config["HCP_SETTINGS"].deadline_unit
    return UNIT_LABELS[unit]


def library_is_workday(day: date) -> bool:
    """chinese-calendar's answer, or Monday–Friday for a year it does not know yet."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


class WorkCalendar:
    """Working days with the admin overrides loaded once, for many deadline computations."""

    def __init__(self, overrides: dict[date, str] | None = None, natural: bool = False):
        self.overrides = overrides or {}
        # HCP_DEADLINE_UNIT=natural (e.g. Hunan's Linwu county): deadlines and the days left
        # to them count every day; is_workday still tells working days (the digest's).
        self.natural = natural

    @classmethod
    def load(cls, session: Session) -> WorkCalendar:
        from flask import current_app

        rows = session.execute(select(CalendarOverride.day, CalendarOverride.kind))
        unit = current_app.config["HCP_SETTINGS"].deadline_unit if current_app else "working"
        return cls({day: kind for day, kind in rows}, natural=unit == "natural")

    @property
    def unit(self) -> str:
        """The unit the deadlines count in, as texts say it: 个工作日, or 天 (natural days)."""
        return unit_label("natural" if self.natural else "working")

    def counts(self, day: date) -> bool:
        """Whether ``day`` counts towards a deadline."""
        return self.natural or self.is_workday(day)

    def is_workday(self, day: date) -> bool:
        kind = self.overrides.get(day)
        if kind is not None:
            return kind == "workday"
        return library_is_workday(day)

    def add_working_days(self, start: date, n: int) -> date:
        """The Nth working day after ``start`` (``start`` itself never counts)."""
        if n < 0:
            raise ValueError("working days must be zero or more")
        day, left = start, n
        while left:
            day += timedelta(days=1)
            if self.counts(day):
                left -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when end ≤ start)."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            if self.counts(day):
                count += 1
        return count

    def due(self, received_at: datetime, n: int) -> date:
        """Deadline date for something received at ``received_at``, ``n`` working days on."""
        return self.add_working_days(local_date(received_at), n)
