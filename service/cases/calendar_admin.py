"""The working-day calendar as admins keep it: holidays and 调休 make-up days entered over
the calendar library (``CalendarOverride``), a year's view, and whether the coming year has
any data yet. ``hcp calendar …`` and the console call these; deadlines read the result
through ``WorkCalendar`` (service/cases/deadlines.py). The caller commits.

A change moves the deadlines of open cases whose window holds the day: each keeps its
number of working days (extension included), counted afresh on the new calendar from the
day its rating was received, and the move goes into the case's history.
"""
from __future__ import annotations

import calendar as month_calendar
from dataclasses import dataclass
from datetime import date

import chinese_calendar
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, CalendarOverride, Case, CaseEvent, Rating
from models.clock import local_date
from models.types import utcnow
from service.cases.deadlines import WorkCalendar, library_is_workday

KINDS = {"holiday": "节假日（不上班）", "workday": "调休工作日（上班）"}
HOLIDAY_NAMES = {h.value: h.chinese for h in chinese_calendar.Holiday}


@dataclass(frozen=True)
class Change:
    """What a calendar change did: the override there before (None: none), and the open
    cases whose deadlines moved."""
    before: dict | None
    moved: list[int]


def set_override(session: Session, day: date, kind: str, note: str | None) -> Change:
    """Mark ``day`` a holiday or a working day over the library."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    old = WorkCalendar.load(session)
    row = session.get(CalendarOverride, day)
    before = {"kind": row.kind, "note": row.note} if row else None
    row = row or CalendarOverride(day=day)
    row.kind, row.note = kind, note
    session.add(row)
    session.flush()
    return Change(before, reschedule(session, old, WorkCalendar.load(session), day))


def remove_override(session: Session, day: date) -> Change | None:
    """Remove the override of ``day``; None if there was none."""
    row = session.get(CalendarOverride, day)
    if row is None:
        return None
    old = WorkCalendar.load(session)
    before = {"kind": row.kind, "note": row.note}
    session.delete(row)
    session.flush()
    return Change(before, reschedule(session, old, WorkCalendar.load(session), day))


def moved_entry(change: Change) -> dict:
    """The 操作日志's note of the cases a change moved (nothing when none moved)."""
    return {"期限调整工单": "、".join(f"#{i}" for i in change.moved)} if change.moved else {}


def override_entry(kind: str, note: str | None, change: Change) -> dict:
    """The 操作日志's "after" of a day set to ``kind``, from the console or the shell."""
    return {"kind": kind, "note": note, **moved_entry(change)}


def moved_text(change: Change) -> str:
    """What the console and the shell say about the deadlines after a change."""
    if change.moved:
        return f"{len(change.moved)} 件在办工单的期限已按新日历重新计算，此后受理的工单同样按新日历"
    return "没有在办工单的期限受影响，此后受理的工单按新日历计算期限"


def reschedule(session: Session, old: WorkCalendar, new: WorkCalendar, day: date) -> list[int]:
    """Open cases received before ``day`` with a deadline on or after it keep the working
    days they had under ``old``, counted on ``new``; the ids of those that moved."""
    rows = session.execute(
        select(Case, Rating.received_at).join(Rating, Rating.id == Case.rating_id)
        .where(Case.status.in_(OPEN_STATUSES), or_(Case.close_due >= day, Case.callback_due >= day))
        .order_by(Case.id)).all()
    now, moved = utcnow(), []
    for case, received_at in rows:
        start = local_date(received_at)
        if start >= day:
            continue
        changes = {}
        for name in ("callback_due", "close_due"):
            due = getattr(case, name)
            if due is not None and due >= day:
                after = new.add_working_days(start, old.working_days_between(start, due))
                if after != due:
                    changes[name] = {"before": due.isoformat(), "after": after.isoformat()}
                    setattr(case, name, after)
        if changes:
            session.add(CaseEvent(case_id=case.id, at=now, actor_id=None, action="reschedule",
                                  from_status=case.status, to_status=case.status,
                                  note=f"工作日历调整（{day.isoformat()}），期限按新日历重新计算", data=changes))
            moved.append(case.id)
    return moved


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
