"""The ``hcp`` command: a Flask CLI group (``hcp --help`` lists everything)."""
from __future__ import annotations

import click
from flask.cli import FlaskGroup, routes_command, shell_command

from service.cli import admin, calendar, clients, demo, exchange, keys, qr, ratings, reasons, report, run
from service.cli.stats import stats
from service.cli.insights import insights


def _create_app():
    from service import create_app
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False)
def main():
    """hcp — 好差评 intake and bad-rating rectification.

    Settings come from HCP_* environment variables (see README); with none set, hcp runs
    embedded: SQLite and a file broker under ./var.
    """


for command in (admin.departments, admin.items, admin.devices, admin.users, clients.clients,
                calendar.calendar, demo.demo, exchange.exchange, keys.keys, qr.qr, ratings.ratings, reasons.reasons,
                run.run, stats,
                insights, report.report,
                shell_command, routes_command):
    main.add_command(command)
