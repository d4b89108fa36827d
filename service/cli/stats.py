"""``hcp stats``: recount or check the figures' rollups against the raw rows."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from service.extensions import db
from service.stats import rollup


@click.group()
def stats():
    """The figures' rollup tables (kept by triggers; see docs/figures.md)."""


@stats.command("check")
@with_appcontext
def stats_check():
    """Compare the rollups with a recount of the raw rows; exit 1 on any difference."""
    diffs = rollup.differences(db.session)
    db.session.rollback()
    for d in diffs:
        click.echo(d)
    if diffs:
        raise click.ClickException(f"{len(diffs)} rollup rows differ from the raw rows (first 20 per grain shown)")
    click.echo("rollups equal the raw rows")


@stats.command("rebuild")
@with_appcontext
def stats_rebuild():
    """Recount the rollups from the raw rows (after a bulk load with triggers off)."""
    rollup.rebuild(db.session)
    db.session.commit()
    click.echo("rollups rebuilt")
