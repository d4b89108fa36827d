"""``hcp ratings``: the default-rating sweep, run now."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from service.extensions import db


@click.group()
def ratings():
    """Ratings: make the default ratings (默认评价) that are due."""


@ratings.command("run-defaults")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1, 50000),
              help="invitations per transaction")
@with_appcontext
def run_defaults(batch_size):
    """Turn every invitation unused for HCP_DEFAULT_RATING_DAYS into a default rating, now.

    The beat does the same every HCP_DEFAULT_SWEEP_SECONDS; running both at once is safe.
    """
    from service.invitations import defaults

    made = defaults.run(db.session, batch=batch_size)
    click.echo(f"{made} default ratings made")
