"""``hcp reasons``: the reason codes (评价指标 / 差评原因) offered with each level."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from service.cli.admin import logged
from service.extensions import db
from service.reasons import table


@click.group()
def reasons():
    """Reason codes: list the active table, import a new version from CSV."""


@reasons.command("list")
@click.option("--level", type=click.IntRange(1, 5), help="only the reasons offered for this level")
@with_appcontext
def reasons_list(level):
    """Print the active table (version 0 is the one shipped with hcp)."""
    version, options = table.active(db.session)
    click.echo(f"version {version}", err=True)
    for o in options:
        if level is None or level in o.levels:
            click.echo(f"{o.code}\t{o.label}\t{o.dimension}\t{o.scope}\t{''.join(map(str, o.levels))}")


@reasons.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@with_appcontext
def reasons_import(file):
    """Make FILE (CSV: code,label,dimension,scope,levels) the active table, as a new version.

    Codes left out are no longer offered, but stay readable on the ratings that carry them.
    """
    before, old = table.active(db.session)
    try:
        version, count = table.import_table(db.session, file.read(), source=getattr(file, "name", None))
    except table.ReasonFileError as err:
        raise click.ClickException(f"{getattr(file, 'name', 'FILE')}: {err}") from err
    logged("reasons.import", f"评价原因代码表 第{version}版", {"版本": before, "条数": len(old)},
           {"版本": version, "条数": count})
    click.echo(f"reasons version {version} active: {count} reasons")
