"""``hcp exchange``: the 上报 outbox's state, requeueing, and the offline export (SPEC §8)."""
from __future__ import annotations

from datetime import date

import click
from flask import current_app
from flask.cli import with_appcontext

from models import OUTBOX_STATES
from service.cli.admin import logged
from service.exchange import operations, profiles
from service.extensions import db


@click.group()
def exchange():
    """上报: records owed to the provincial/national platform (docs/exchange.md)."""


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


@exchange.command("status")
@with_appcontext
def exchange_status():
    """Pending / sent / rejected / held counts, the oldest pending record's age, the reasons."""
    state = operations.status(db.session)
    settings = current_app.config["HCP_SETTINGS"]
    for name in OUTBOX_STATES:
        click.echo(f"{name}\t{state.counts[name]}")
    click.echo(f"oldest pending\t{_age(state.oldest_pending_seconds)}")
    click.echo(f"profile\t{settings.exchange_profile}; target {settings.exchange_url or '- (HCP_EXCHANGE_URL unset)'}")
    for status, reason, n in state.reasons:
        click.echo(f"{status}\t{n}\t{reason}")


@exchange.command("requeue")
@click.option("--rejected", is_flag=True, help="the records the receiver rejected, too")
@with_appcontext
def exchange_requeue(rejected):
    """Make held records (and pending ones in a backoff) due now; with --rejected, rejected ones too."""
    changed = operations.requeue(db.session, rejected=rejected)
    logged("exchange.requeue", "上报队列", None, operations.requeue_entry(rejected, changed))
    click.echo(f"{changed} records requeued")


def _profile(ctx, param, value):
    if value is None:
        return None  # HCP_EXCHANGE_PROFILE, read once the app is there
    try:
        profiles.load(value)
    except profiles.UnknownProfile as err:
        raise click.BadParameter(str(err)) from None
    return value


@exchange.command("export")
@click.option("--date", "day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="the day (Asia/Shanghai) whose records to write, YYYY-MM-DD")
@click.option("--profile", callback=_profile, help="the profile to code them in (default HCP_EXCHANGE_PROFILE)")
@click.option("--out", type=click.File("w", encoding="utf-8", lazy=False), default="-",
              help="file to write (default stdout)")
@with_appcontext
def exchange_export(day, profile, out):
    """Write a day's records as JSON lines, for offline 上报; changes nothing.

    Records a profile cannot code are listed on stderr, never written mis-coded.
    """
    settings = current_app.config["HCP_SETTINGS"]
    done = operations.export(db.session, date(day.year, day.month, day.day), profile or settings.exchange_profile,
                             settings.area_code, out)
    db.session.rollback()
    for record_id, why in done.held:
        click.echo(f"held {record_id}: {why}", err=True)
    click.echo(f"{done.written} records written, {len(done.held)} held", err=True)
