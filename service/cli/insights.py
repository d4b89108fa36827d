"""``hcp insights``: recount or check the hot spots' daily term counts against the raw rows."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from service.extensions import db
from service.insights import counting

_PERIOD = [
    click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), default=None,
                 help="first local rating date (YYYY-MM-DD); default: the first there is"),
    click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), default=None,
                 help="last local rating date (YYYY-MM-DD); default: the last there is"),
]


def _period(view):
    for option in reversed(_PERIOD):
        view = option(view)
    return view


def _dates(date_from, date_to):
    d_from = date_from.date() if date_from else None
    d_to = date_to.date() if date_to else None
    if d_from and d_to and d_from > d_to:
        raise click.BadParameter("--from must not be after --to", param_hint="--to")
    return d_from, d_to


@click.group()
def insights():
    """The hot spots' term counts (kept as ratings arrive; see docs/insights.md)."""


@insights.command("rebuild")
@_period
@with_appcontext
def insights_rebuild(date_from, date_to):
    """Recount the term counts of ratings dated in the period from the raw rows."""
    counted = counting.rebuild(db.session, *_dates(date_from, date_to))
    db.session.commit()
    click.echo(f"term counts rebuilt from {counted} ratings with text")


@insights.command("check")
@_period
@with_appcontext
def insights_check(date_from, date_to):
    """Compare the term counts with a recount of the raw rows; exit 1 on any difference."""
    diffs = counting.differences(db.session, *_dates(date_from, date_to))
    db.session.rollback()
    for d in diffs:
        click.echo(d)
    if diffs:
        raise click.ClickException(f"{len(diffs)} term counts differ from the raw rows (first 20 shown)")
    click.echo("term counts equal the raw rows")
