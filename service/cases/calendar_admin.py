"""The working-day calendar as admins keep it: holidays and 调休 make-up days entered over
the calendar library (``CalendarOverride``), a year's view, and whether the coming year has
any data yet. ``hcp calendar …`` and the console call these; deadlines read the result
through ``WorkCalendar`` (service/cases/deadlines.py). The caller commits.
"""
from __future__ import annotations

import calendar as month_calendar
from dataclasses import dataclass
from datetime import date

import chinese_calendar
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import CalendarOverride
from service.cases.deadlines import WorkCalendar, library_is_workday

KINDS = {"holiday": "节假日（不上班）", "workday": "调休工作日（上班）"}
HOLIDAY_NAMES = {h.value: h.chinese for h in chinese_calendar.Holiday}


def set_override(session: Session, day: date, kind: str, note: str | None) -> dict | None:
    """Mark ``day`` a holiday or a working day over the library; returns what it was before
    (None: no override)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    row = session.get(CalendarOverride, day)
    before = {"kind": row.kind, "note": row.note} if row else None
    row = row or CalendarOverride(day=day)
    row.kind, row.note = kind, note
    session.add(row)
    return before


def remove_override(session: Session, day: date) -> dict | None:
    """Remove the override of ``day``; what it was, or None if there was none."""
    row = session.get(CalendarOverride, day)
    if row is None:
        return None
    before = {"kind": row.kind, "note": row.note}
    session.delete(row)
    return before


def library_covers(year: int) -> bool:
    """Whether chinese-calendar has the State Council's holidays for ``year``."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
        return True
    except NotImplementedError:
        return False


def year_has_data(session: Session, year: int) -> bool:
    """The library covers the year, or an admin has entered at least one day of it."""
    if library_covers(year):
        return True
    return bool(session.scalar(select(func.count()).select_from(CalendarOverride).where(
        CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31))))


@dataclass
class Day:
    day: date
    workday: bool
    library_workday: bool
    override: str | None  # holiday | workday | None
    note: str | None
    holiday_name: str | None  # the library's name of the holiday (or of the 调休 it belongs to)

    @property
    def kind(self) -> str:
        """How the page marks the day: workday, weekend, holiday or makeup (a weekend day worked)."""
        if not self.workday:
            return "weekend" if self.day.weekday() >= 5 and not self.holiday_name else "holiday"
        return "makeup" if self.day.weekday() >= 5 else "workday"


def year_view(session: Session, year: int) -> list[tuple[int, list[list[Day | None]]]]:
    """The year as twelve months of weeks (Monday first; None pads a week)."""
    cal = WorkCalendar.load(session)
    covered = library_covers(year)
    months = []
    for month in range(1, 13):
        weeks = []
        for week in month_calendar.Calendar().monthdatescalendar(year, month):
            row = []
            for d in week:
                if d.month != month:
                    row.append(None)
                    continue
                name = None
                if covered:
                    on_holiday, holiday = chinese_calendar.get_holiday_detail(d)
                    name = HOLIDAY_NAMES.get(holiday) if holiday else None
                over = cal.overrides.get(d)
                row.append(Day(d, cal.is_workday(d), library_is_workday(d), over,
                               None, name))
            weeks.append(row)
        months.append((month, weeks))
    notes = dict(session.execute(select(CalendarOverride.day, CalendarOverride.note).where(
        CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31))).all())
    for _, weeks in months:
        for week in weeks:
            for cell in week:
                if cell and cell.day in notes:
                    cell.note = notes[cell.day]
    return months


def overrides_of(session: Session, year: int) -> list[CalendarOverride]:
    return list(session.scalars(select(CalendarOverride).where(
        CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31))
        .order_by(CalendarOverride.day)))
