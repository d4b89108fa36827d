"""The local clock: hcp's days are Asia/Shanghai calendar days (deadlines, figures, dates on pages).

Beside the models so that the intake, figures, pages and workers take a rating's local date
from one place below them all; times are stored in UTC (models/types.py).
"""
from datetime import date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar date of an aware datetime."""
    return moment.astimezone(SHANGHAI).date()
