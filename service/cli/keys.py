"""``hcp keys``: making a data key and rotating HCP_DATA_KEY without losing rater data.

Rotation (docs/security.md): put the new key first in HCP_DATA_KEY, keeping the old one
after it (``HCP_DATA_KEY=new,old``) and restart hcp, so new data is encrypted with the new
key and old data still opens; run ``hcp keys rotate-data``; then drop the old key.
"""
from __future__ import annotations

import click
from cryptography.fernet import Fernet
from flask import current_app
from flask.cli import with_appcontext

from service.extensions import db
from models import Project, Rating
from service.privacy import (ENCRYPTED_COLUMNS, PROJECT_ENCRYPTED_COLUMNS, RotationError, rotate_batch,
                             rotate_department_secrets)


@click.group()
def keys():
    """Data keys: HCP_DATA_KEY (rater name and phone, webhook signing secrets)."""


@keys.command("generate")
def generate():
    """Print a new data key (a Fernet key) for HCP_DATA_KEY."""
    click.echo(Fernet.generate_key().decode())


@keys.command("rotate-data")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100000),
              help="ratings re-encrypted per transaction")
@with_appcontext
def rotate_data(batch_size):
    """Re-encrypt every rater and applicant field (and webhook secret) with the first key of HCP_DATA_KEY.

    Each batch is its own transaction, so the command may be stopped and run again; every
    key listed in HCP_DATA_KEY still decrypts, so hcp keeps serving while it runs.
    """
    n_keys = len(current_app.config["HCP_SETTINGS"].data_keys)
    try:
        secrets = rotate_department_secrets(db.session)
    except RotationError as err:
        db.session.rollback()
        raise click.ClickException(str(err)) from err
    db.session.commit()
    fields = 0
    for model, names, what in ((Rating, ENCRYPTED_COLUMNS, "rating"),
                               (Project, PROJECT_ENCRYPTED_COLUMNS, "project")):
        after = 0
        while True:
            try:
                last, rewritten = rotate_batch(db.session, after, batch_size, model, names, what)
            except RotationError as err:
                db.session.rollback()
                raise click.ClickException(f"{err}; {fields} fields already re-encrypted are kept") from err
            if last is None:
                break
            db.session.commit()
            fields += rewritten
            after = last
            click.echo(f"re-encrypted {fields} fields (up to {what} {last})", err=True)
    db.session.commit()
    click.echo(f"done: {fields} rater fields and {secrets} webhook secret(s) now encrypted with the first "
               f"of {n_keys} HCP_DATA_KEY key(s)")
