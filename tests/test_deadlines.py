"""Working-day deadlines: holidays, 调休 make-up days, admin overrides, uncovered years."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from service.cases.deadlines import WorkCalendar, library_is_workday

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("received,n,due", [
    ("2021-09-30T10:00:00+08:00", 1, date(2021, 10, 8)),   # National Day week
    ("2021-09-30T10:00:00+08:00", 15, date(2021, 10, 27)),  # counts Sat 10-09, a make-up workday
    ("2021-09-30T23:30:00+00:00", 1, date(2021, 10, 8)),    # 07:30 on 10-01 in Shanghai
    ("2026-12-20T09:00:00+08:00", 15, date(2027, 1, 8)),    # 2027: Mon–Fri fallback
    ("2026-11-26T09:00:00+08:00", 0, date(2026, 11, 26)),
])
def test_due_dates(received, n, due):
    assert WorkCalendar().due(datetime.fromisoformat(received), n) == due


def test_admin_holiday_moves_the_deadline():
    received = datetime(2026, 12, 20, 9, tzinfo=SH)
    assert WorkCalendar({date(2027, 1, 1): "holiday"}).due(received, 15) == date(2027, 1, 11)


def test_admin_workday_counts_a_weekend_day():
    received = datetime(2027, 1, 8, 9, tzinfo=SH)  # a Friday
    assert WorkCalendar().due(received, 1) == date(2027, 1, 11)
    assert WorkCalendar({date(2027, 1, 9): "workday"}).due(received, 1) == date(2027, 1, 9)


def test_uncovered_years_never_crash():
    assert library_is_workday(date(2031, 3, 3)) is True  # a Monday
    assert library_is_workday(date(2031, 3, 2)) is False
    assert WorkCalendar().due(datetime(2040, 1, 1, tzinfo=SH), 15).year == 2040


def test_working_days_between():
    cal = WorkCalendar()
    assert cal.working_days_between(date(2021, 9, 30), date(2021, 10, 8)) == 1
    assert cal.working_days_between(date(2021, 10, 8), date(2021, 9, 30)) == 0


def test_negative_working_days_refused():
    with pytest.raises(ValueError):
        WorkCalendar().add_working_days(date(2026, 1, 5), -1)
