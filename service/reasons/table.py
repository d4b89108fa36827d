"""The reason table: the newest imported version, else the one shipped in the repo.

Functions take a Session or a Core Connection (the intake has the latter). Codes on old
ratings keep their label: ``labels`` looks through every version, newest first.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select

from models import REASON_SCOPES, Reason, ReasonVersion

SHIPPED = Path(__file__).with_name("default.csv")
COLUMNS = ("code", "label", "dimension", "scope", "levels")
CODE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class Option:
    code: str
    label: str
    dimension: str
    scope: str
    levels: tuple[int, ...]


class ReasonFileError(ValueError):
    """A reason file that cannot become the active table; the message names the line, and
    ``chinese`` says the same for the admin console."""

    def __init__(self, message: str, chinese: str = ""):
        super().__init__(message)
        self.chinese = chinese or message


def parse(text: str) -> list[Option]:
    """The options of a CSV (UTF-8, header ``code,label,dimension,scope,levels``).

    ``levels`` are the digits of the levels an option is offered for (``12`` = the two bad
    levels). Raises ReasonFileError naming the first bad line.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ReasonFileError(f"line 1: the header must be {','.join(COLUMNS)}",
                              f"第1行：表头应为 {','.join(COLUMNS)}")
    options, seen = [], set()
    for line, row in enumerate(reader, start=2):
        values = {k: (row.get(k) or "").strip() for k in COLUMNS}
        problem = None
        if not CODE.match(values["code"]):
            problem = ("code must be 1–32 letters, digits, '_', '.' or '-'",
                       "代码须为1–32位字母、数字、下划线、点或短横线")
        elif values["code"] in seen:
            problem = f"code {values['code']} appears twice", f"代码 {values['code']} 重复"
        elif not 1 <= len(values["label"]) <= 100:
            problem = "label must be 1–100 characters", "名称须为1–100字"
        elif not 1 <= len(values["dimension"]) <= 50:
            problem = "dimension must be 1–50 characters", "指标维度须为1–50字"
        elif values["scope"] not in REASON_SCOPES:
            problem = (f"scope must be one of {', '.join(REASON_SCOPES)}",
                       f"适用范围须为 {'、'.join(REASON_SCOPES)} 之一")
        elif (not values["levels"] or not set(values["levels"]) <= set("12345")
              or len(set(values["levels"])) != len(values["levels"])):
            problem = "levels must be distinct digits 1–5, e.g. 12", "适用等级须为不重复的1–5数字，如 12"
        if problem:
            raise ReasonFileError(f"line {line}: {problem[0]}", f"第{line}行：{problem[1]}")
        seen.add(values["code"])
        options.append(Option(values["code"], values["label"], values["dimension"], values["scope"],
                              tuple(sorted(int(d) for d in values["levels"]))))
    if not options:
        raise ReasonFileError("the file holds no reasons", "文件中没有任何原因代码")
    return options


_shipped: list[Option] | None = None


def shipped() -> list[Option]:
    """The default table in the repo (service/reasons/default.csv)."""
    global _shipped
    if _shipped is None:
        _shipped = parse(SHIPPED.read_text(encoding="utf-8"))
    return _shipped


def _option(row) -> Option:
    return Option(row.code, row.label, row.dimension, row.scope, tuple(int(d) for d in row.levels))


_R = Reason.__table__.c


def active(conn) -> tuple[int, list[Option]]:
    """(version, options) of the active table; version 0 is the shipped default."""
    version = conn.execute(select(func.max(ReasonVersion.id))).scalar()
    if version is None:
        return 0, shipped()
    rows = conn.execute(select(_R.code, _R.label, _R.dimension, _R.scope, _R.levels)
                        .where(_R.version_id == version).order_by(_R.id))
    return version, [_option(r) for r in rows]


def problems(offered: dict[str, Option], level: int, codes: list[str]) -> list[str]:
    """Why ``codes`` cannot go on a rating of ``level`` (empty: they can); ``offered`` is
    the active table by code (``offered(conn)``)."""
    out = []
    for code in codes:
        option = offered.get(code)
        if option is None:
            out.append(f"unknown reason code {code}")
        elif level not in option.levels:
            out.append(f"reason {code} is not offered for level {level}")
    if len(set(codes)) != len(codes):
        out.append("a reason code is given twice")
    return out


def offered(conn) -> dict[str, Option]:
    """The active table's options by code."""
    return {o.code: o for o in active(conn)[1]}


def labels(conn, codes) -> dict[str, Option]:
    """Each code's option in the newest version holding it (then the shipped table)."""
    codes = set(codes)
    found: dict[str, Option] = {}
    if codes:
        rows = conn.execute(select(_R.code, _R.label, _R.dimension, _R.scope, _R.levels)
                            .where(_R.code.in_(codes)).order_by(_R.version_id.desc()))
        for row in rows:
            found.setdefault(row.code, _option(row))
    for option in shipped():
        if option.code in codes:
            found.setdefault(option.code, option)
    return found


def import_table(session, text: str, source: str | None = None) -> tuple[int, int]:
    """Make the reasons in CSV ``text`` the active table, as a new version; the caller commits.

    Returns (version, number of reasons). Raises ReasonFileError (nothing stored) on a bad file.
    """
    options = parse(text)
    version = ReasonVersion(source=(source or "")[:200] or None)
    session.add(version)
    session.flush()
    session.execute(insert(Reason), [
        {"version_id": version.id, "code": o.code, "label": o.label, "dimension": o.dimension,
         "scope": o.scope, "levels": "".join(str(d) for d in o.levels)} for o in options])
    return version.id, len(options)


@dataclass
class Change:
    """One option of the preview: added, removed, or changed (``before`` → ``after``)."""

    code: str
    before: Option | None
    after: Option | None


def diff(old: list[Option], new: list[Option]) -> dict[str, list[Change]]:
    """What importing ``new`` over ``old`` changes, for the console's preview."""
    before, after = {o.code: o for o in old}, {o.code: o for o in new}
    return {
        "added": [Change(c, None, o) for c, o in after.items() if c not in before],
        "removed": [Change(c, o, None) for c, o in before.items() if c not in after],
        "changed": [Change(c, before[c], o) for c, o in after.items() if c in before and before[c] != o],
    }
