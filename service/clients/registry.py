"""Adding and listing integration clients; the CLI (and later the console) call these."""
from __future__ import annotations

from models import Department, IntegrationClient
from service.auth.clients import new_client_key
from service.extensions import db
from service.privacy import key_digest


def add_client(name: str, kind: str, dept: Department,
               callback_url: str | None = None) -> tuple[IntegrationClient, str]:
    """A new client and its key (returned once, stored hashed); the caller commits."""
    key = new_client_key()
    client = IntegrationClient(name=name, kind=kind, department=dept, callback_url=callback_url,
                               key_hash=key_digest(key))
    db.session.add(client)
    return client, key
