"""``hcp calendar``: working-day deadlines and the admin's holiday / make-up-day overrides."""
from __future__ import annotations

from datetime import date, datetime, timezone

import click
from flask.cli import with_appcontext

from models.clock import SHANGHAI
from service.cases.calendar_admin import moved_entry, override_entry, remove_override, set_override
from service.cli.admin import logged
from service.cases.deadlines import WorkCalendar
from service.extensions import db


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not an ISO date or datetime") from err
    return moment.replace(tzinfo=SHANGHAI) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not a date like 2027-01-01") from err


@click.group()
def calendar():
    """Working days: deadlines, holidays and make-up workdays (调休)."""


@calendar.command("due")
@click.argument("received_at")
@click.option("--working-days", "-n", type=click.IntRange(min=0), required=True)
@with_appcontext
def due(received_at, working_days):
    """Print the due date N working days after RECEIVED_AT (local time if no offset)."""
    click.echo(WorkCalendar.load(db.session).due(_moment(received_at), working_days).isoformat())


def _override(day: str, kind: str, note: str | None) -> None:
    d = _day(day)
    change = set_override(db.session, d, kind, note)
    logged(f"calendar.{kind}", d.isoformat(), change.before, override_entry(kind, note, change))
    _say_moved(change)


def _say_moved(change) -> None:
    if change.moved:
        click.echo(f"{len(change.moved)} open case(s) got new deadlines on the new calendar: "
                   + ", ".join(map(str, change.moved)))


@calendar.command("add-holiday")
@click.argument("day")
@click.option("--note", help="e.g. 元旦")
@with_appcontext
def add_holiday(day, note):
    """Mark DAY a holiday (no work), over the calendar library."""
    _override(day, "holiday", note)
    click.echo(f"{day} is a holiday")


@calendar.command("add-workday")
@click.argument("day")
@click.option("--note", help="e.g. 调休上班")
@with_appcontext
def add_workday(day, note):
    """Mark DAY a working day (调休 make-up day), over the calendar library."""
    _override(day, "workday", note)
    click.echo(f"{day} is a working day")


@calendar.command("remove")
@click.argument("day")
@with_appcontext
def remove(day):
    """Remove the override of DAY."""
    d = _day(day)
    change = remove_override(db.session, d)
    if change is None:
        raise click.ClickException(f"no override for {day}")
    logged("calendar.remove", d.isoformat(), change.before, moved_entry(change))
    _say_moved(change)
    click.echo(f"override of {day} removed")
