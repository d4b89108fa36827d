"""PostgreSQL statements over a batch of rows sent as one JSON parameter, for the workers'
per-batch writes.

``json_to_recordset(%(rows)s::json)`` makes a batch one statement whose text never changes
with the number of rows: the driver parses and prepares it once, and the rows travel as one
text that the standard library encodes in C — not one statement per row (psycopg's
executemany was a third of a ``process_stored`` task in the profile), not one bind parameter
per value (a multi-row VALUES), and not one array per column either (psycopg builds arrays
element by element in Python: ~3 µs a value, 20 times ``json.dumps``). SQLite keeps its
plain executemany.
"""
from __future__ import annotations

import json
from datetime import date

from sqlalchemy import BigInteger, any_, literal
from sqlalchemy.dialects import postgresql

_PG = postgresql.dialect()


def _quote(name: str) -> str:
    return _PG.identifier_preparer.quote(name)  # "window" is a keyword


def recordset(table, columns: tuple[str, ...], param: str = "rows") -> str:
    """``json_to_recordset(%(param)s::json) AS t(c type, …)``: the rows of ``dumps`` as
    ``columns`` of ``table``, in their order."""
    typed = ", ".join(f"{_quote(c)} {table.c[c].type.compile(dialect=_PG)}" for c in columns)
    return f"json_to_recordset(%({param})s::json) AS t({typed})"


def insert(table, columns: tuple[str, ...]) -> str:
    """``INSERT … SELECT FROM json_to_recordset(…)`` into ``table``, in the rows' order."""
    names = ", ".join(_quote(c) for c in columns)
    return f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {recordset(table, columns)}"


def insert_ignore(table, columns: tuple[str, ...]) -> str:
    """``INSERT … SELECT FROM json_to_recordset(…) ON CONFLICT DO NOTHING`` into ``table``."""
    return f"{insert(table, columns)} ON CONFLICT DO NOTHING"


def _iso(value):
    if isinstance(value, date):  # dates and aware datetimes: PostgreSQL reads ISO 8601
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


def dumps(rows: list[dict]) -> str:
    """The parameter of ``recordset``: the rows as one JSON array of objects."""
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"), default=_iso)


def id_in(column, ids, dialect: str):
    """``column IN ids``: on PostgreSQL ``= ANY(one array)``, a text that does not change with
    the number of ids (an expanding IN is a new text for the driver at each length)."""
    if dialect == "postgresql":
        return column == any_(literal(list(ids), postgresql.ARRAY(BigInteger)))
    return column.in_(ids)
