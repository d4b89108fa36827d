"""``INSERT … ON CONFLICT`` for the database a session or connection is bound to.

PostgreSQL and SQLite both spell ``ON CONFLICT``, but SQLAlchemy builds it from each
dialect's own ``insert``; every ``ON CONFLICT`` insert in hcp asks here which one to use.
"""
from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite


def insert(on, table):
    """``insert(table)`` of ``on``'s dialect: a (scoped) Session, a Connection, an Engine or a dialect name."""
    if hasattr(on, "get_bind"):  # a Session, or Flask-SQLAlchemy's scoped ``db.session``
        on = on.get_bind()
    name = on if isinstance(on, str) else on.dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)
