"""``hcp qr``: hall QR codes (扫码评价, SPEC §7) — a window's fixed QR opening ``/q/{code}``.

A hall QR is a device of channel ``qrcode`` (``hcp devices add … --channel qrcode`` makes
one too); these commands add one and print what to post at the window, and list them.
"""
from __future__ import annotations

import io
from pathlib import Path

import click
import segno
from flask.cli import with_appcontext
from sqlalchemy import select

from models import Device
from service.citizen import hall
from service.cli.admin import department_by_code
from service.extensions import db
from service.org import add_device


@click.group()
def qr():
    """Hall QR codes: one per hall or window, printed where citizens are served."""


@qr.command("add")
@click.argument("name")
@click.option("--department", required=True, help="department code of the hall or window")
@click.option("--window", help="window number (窗口号); leave out for a whole hall")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="also write the QR code to print as an SVG file")
@with_appcontext
def qr_add(name, department, window, svg_path):
    """Add a hall QR and print its page's address (the code is public; no key is needed)."""
    device, _ = add_device(name, department_by_code(department), "qrcode", window, None)
    db.session.commit()
    url = hall.link(device)
    if svg_path is not None:
        out = io.BytesIO()
        segno.make(url, error="m").save(out, kind="svg", scale=8, border=2, title="扫码评价")
        svg_path.write_bytes(out.getvalue())
        click.echo(f"QR code written to {svg_path}", err=True)
    click.echo(f"hall QR {device.id} {name} added; print {url}/qr.svg or the file above", err=True)
    click.echo(url)


@qr.command("list")
@with_appcontext
def qr_list():
    """List hall QRs: id, name, department, window, code, page address, state."""
    rows = db.session.scalars(select(Device).where(Device.channel == "qrcode", Device.qr_code.is_not(None))
                              .order_by(Device.id))
    for d in rows:
        click.echo(f"{d.id}\t{d.name}\t{d.department.code}\t{d.window or ''}\t{d.qr_code}\t{hall.link(d)}\t"
                   f"{'active' if d.active else 'disabled'}")
