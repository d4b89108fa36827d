"""``hcp report``: the bureau's 好差评 work summary of a period, written to a file."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from models import Department
from service.extensions import db
from service.reports import charts, content, render
from service.stats.figures import Filters


@click.command("report")
@click.option("--from", "date_from", required=True, type=click.DateTime(["%Y-%m-%d"]), help="first rating date")
@click.option("--to", "date_to", required=True, type=click.DateTime(["%Y-%m-%d"]), help="last rating date")
@click.option("--department", help="department code (its subtree); default: every department")
@click.option("--format", "fmt", type=click.Choice(list(render.FORMATS)), default="pdf", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write; default hcp-report-<department>-<from>-<to>.<format> here")
@with_appcontext
def report(date_from, date_to, department, fmt, out):
    """Write the work summary (figures, tables, hot spots, charts) of [--from, --to]."""
    first, last = date_from.date(), date_to.date()
    if first > last:
        raise click.BadParameter("must not be before --from", param_hint="--to")
    dept = None
    if department:
        dept = db.session.scalar(select(Department).where(Department.code == department))
        if dept is None:
            raise click.BadParameter(f"no department {department!r}", param_hint="--department")
    report_ = content.gather(db.session, Filters(first, last, dept.path if dept else None),
                             dept.name if dept else "全部部门")
    db.session.rollback()
    try:
        body = render.write(report_, fmt, current_app.config["HCP_SETTINGS"].report_font)
    except charts.FontMissing as exc:
        raise click.ClickException(str(exc)) from exc
    out = out or Path(f"hcp-report-{department or 'all'}-{first.isoformat()}-{last.isoformat()}.{fmt}")
    out.write_bytes(body)
    click.echo(f"{out}: {report_.sentences()[0]}")
