"""Working-day deadlines: holidays, 调休 make-up days, admin overrides, uncovered years."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from models.clock import local_date
from service.cases.deadlines import WorkCalendar, library_is_workday

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("received,n,due", [
    ("2021-09-30T10:00:00+08:00", 1, date(2021, 10, 8)),   # National Day week
    ("2021-09-30T10:00:00+08:00", 15, date(2021, 10, 27)),  # counts Sat 10-09, a make-up workday
    # Near midnight the Shanghai date is not the UTC date, and here the two give other deadlines:
    ("2021-10-07T16:30:00+00:00", 1, date(2021, 10, 9)),    # 00:30 Fri 10-08 in Shanghai (UTC: 10-07, a holiday)
    ("2021-10-08T23:30:00+00:00", 1, date(2021, 10, 11)),   # 07:30 Sat 10-09, the make-up workday (UTC: Fri 10-08)
    ("2021-10-08T15:59:59+00:00", 1, date(2021, 10, 9)),    # 23:59:59 Fri 10-08 in Shanghai: still Friday
    ("2021-10-08T16:00:00+00:00", 1, date(2021, 10, 11)),   # Shanghai midnight: Saturday 10-09 begins
    ("2021-10-09T00:30:00+08:00", 1, date(2021, 10, 11)),   # the same day written in local time
    ("2026-12-20T09:00:00+08:00", 15, date(2027, 1, 8)),    # 2027: Mon–Fri fallback
    ("2026-11-26T09:00:00+08:00", 0, date(2026, 11, 26)),
])
def test_due_dates(received, n, due):
    assert WorkCalendar().due(datetime.fromisoformat(received), n) == due


@pytest.mark.parametrize("moment,day", [
    ("2021-10-08T23:30:00+00:00", date(2021, 10, 9)),
    ("2021-10-08T16:00:00+00:00", date(2021, 10, 9)),
    ("2021-10-08T15:59:59+00:00", date(2021, 10, 8)),
    ("2021-10-09T07:59:59+08:00", date(2021, 10, 9)),
    ("2021-10-08T20:00:00-05:00", date(2021, 10, 9)),  # 01:00 UTC on 10-09, 09:00 in Shanghai
    ("2021-12-31T16:00:00+00:00", date(2022, 1, 1)),
])
def test_local_date_is_the_shanghai_date(moment, day):
    assert local_date(datetime.fromisoformat(moment)) == day


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
    assert cal.working_days_between(date(2021, 10, 8), date(2021, 10, 11)) == 2  # Sat 10-09 made up, Mon
    assert cal.working_days_between(date(2021, 9, 30), date(2021, 10, 27)) == 15


def test_negative_working_days_refused():
    with pytest.raises(ValueError, match="^working days must be zero or more$"):
        WorkCalendar().add_working_days(date(2026, 1, 5), -1)


def test_natural_day_unit_counts_every_day():
    """HCP_DEADLINE_UNIT=natural (Hunan's Linwu county: 7 and 15 natural days)."""
    natural = WorkCalendar(natural=True)
    received = datetime(2021, 9, 30, 10, 0, tzinfo=SH)
    assert natural.due(received, 7) == date(2021, 10, 7)  # National Day holidays counted
    assert natural.due(received, 15) == date(2021, 10, 15)
    assert natural.is_workday(date(2021, 10, 1)) is False  # still a day off for the digest
    assert natural.working_days_between(date(2021, 10, 1), date(2021, 10, 3)) == 2


def test_the_unit_comes_from_the_settings(app):
    from service.extensions import db

    settings = app.config["HCP_SETTINGS"]
    with app.app_context():
        assert WorkCalendar.load(db.session).natural is False
        settings.deadline_unit = "natural"
        try:
            assert WorkCalendar.load(db.session).natural is True
        finally:
            settings.deadline_unit = "working"


@pytest.mark.parametrize("natural,unit", [(False, "个工作日"), (True, "天")])
def test_digest_and_cards_speak_in_the_deadline_unit(natural, unit):
    """The morning digest's days left and past, the cards' texts and the case page count in
    the unit the deadlines do: over National Day a natural-day calendar counts the holidays."""
    from types import SimpleNamespace

    from service.cases import digest, warnings
    from service.web.pages import Due

    calendar = WorkCalendar(natural=natural)
    cards = warnings.Cards(calendar, date(2021, 9, 30))
    soon = SimpleNamespace(id=7, status="rectifying", callback_due=None, close_due=date(2021, 10, 8))
    late = SimpleNamespace(id=8, status="rectifying", callback_due=None, close_due=date(2021, 9, 28))
    user = SimpleNamespace(display_name="韩梅", username="han")
    _, text = digest.text_for(user, [late, soon], cards)
    left = 8 if natural else 1  # 10-01 … 10-08, or only Fri 10-08 is a working day
    assert f"工单 7，整改中，办结期限 2021-10-08（还有 {left} {unit}）" in text
    assert f"工单 8，整改中，办结期限 2021-09-28（已逾期 2 {unit}）" in text
    assert cards.of(soon).unit == unit
    assert Due(cards.of(soon)).text == f"剩余{left}{unit}" and Due(cards.of(late)).text == f"已逾期2{unit}"
