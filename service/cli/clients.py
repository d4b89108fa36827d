"""``hcp clients``: integration clients (approval system, provincial platform, 12345 hotline)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from models import CLIENT_KINDS, IntegrationClient
from service.cli.admin import department_by_code, http_url, logged
from service import audit
from service.auth import clients as client_auth
from service.clients.registry import add_client
from service.extensions import db
from service.notify import redact_url


@click.group()
def clients():
    """Integration clients: systems that talk to hcp with a key of their own (not rating devices)."""


@clients.command("add")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(CLIENT_KINDS),
              help="approval 审批系统, upstream 省级平台, hotline 12345")
@click.option("--department", required=True, help="department code")
@click.option("--callback-url", callback=http_url, help="where results of this client's records are pushed back")
@with_appcontext
def clients_add(name, kind, department, callback_url):
    """Add an integration client and print its key — shown this once only."""
    client, key = add_client(name, kind, department_by_code(department), callback_url or None)
    db.session.flush()
    logged("client.add", f"接入系统 {client.id} {client.name}", None,
           {"类型": kind, "部门": department,
            "回调地址": redact_url(client.callback_url) if client.callback_url else None})
    click.echo(f"client {client.id} {name} ({kind}) added; its key (shown once, keep it safe):", err=True)
    click.echo(key)


@clients.command("list")
@with_appcontext
def clients_list():
    """List integration clients (keys are never shown again)."""
    for c in db.session.scalars(select(IntegrationClient).order_by(IntegrationClient.id)):
        url = redact_url(c.callback_url) if c.callback_url else ""
        click.echo(f"{c.id}\t{c.name}\t{c.kind}\t{c.department.code}\t{url}\t"
                   f"{'active' if c.active else 'disabled'}")


def _set_active(client_id: int, active: bool) -> IntegrationClient:
    client = db.session.get(IntegrationClient, client_id)
    if client is None:
        raise click.ClickException(f"no client {client_id}")
    before = client.active
    client.active = active
    logged("client.enable" if active else "client.disable", f"接入系统 {client.id} {client.name}",
           *audit.changed({"启用": before}, {"启用": active}))
    client_auth.changed()  # committed: every web process reads the client again
    return client


@clients.command("disable")
@click.argument("client_id", type=int)
@with_appcontext
def clients_disable(client_id):
    """Refuse a client's key from now on."""
    client = _set_active(client_id, False)
    click.echo(f"client {client.id} {client.name} disabled")


@clients.command("enable")
@click.argument("client_id", type=int)
@with_appcontext
def clients_enable(client_id):
    """Accept a disabled client's key again."""
    client = _set_active(client_id, True)
    click.echo(f"client {client.id} {client.name} enabled")
