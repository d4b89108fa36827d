"""PostgreSQL: a profile's coding (profiles.Profile.encode of records.neutral) as SQL, so the
push's claim returns each record as the JSON text it is sent as (SPEC §8).

``columns(profile, area_code)`` gives two SQL expressions over the claim's row (``q``, the
labels of push._read): ``sql_record``, the record's ``{id, type, data}`` as JSON text (the
fields in the profile's order: literal keys, each value's JSON text concatenated in), and
``sql_held``, true when the record cannot be coded this way — a value with no code, a
required field empty, its rating gone, a value of a shape the SQL does not code. The push
codes a held one in Python (Profile.encode), which holds it with its reasons: the rules and
the reasons keep their one home, and a record is never sent mis-coded. Code tables are
looked up in a jsonb of them bound to the statement (``codes``: the statement stays short,
its text parsed and planned once), times ``to_char`` in Asia/Shanghai. A profile the SQL
cannot write exactly (a time format other than "iso" or %Y %m %d %H %M %S, a time written
plain or coded) gets ``None``: it is coded in Python.
tests/test_exchange_pgcode.py holds the two to the same payloads for every profile.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass

from models.exchange import RATING_RECORD_PREFIX
from service.exchange import profiles
from service.exchange.profiles import _PLAIN, _REQUIRED, _TIME, Profile, UnknownProfile

_STRFTIME = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%H": "HH24", "%M": "MI", "%S": "SS"}
# A neutral value's shape: text, a number, HCP_AREA_CODE, a value of the case's payload, a list, a time.
_SCALAR, _NUMBER, _CONSTANT, _JSON, _LIST, _MOMENT = "scalar", "number", "constant", "json", "list", "moment"


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def to_char_format(time_format: str) -> str | None:
    """A strftime format as to_char's, literal text quoted; None if it has another directive."""
    out = []
    for part in re.split(r"(%.)", time_format):
        if part in _STRFTIME:
            out.append(_STRFTIME[part])
        elif part.startswith("%"):
            return None
        elif any(c.isalnum() or c in '"\\' for c in part):  # text to_char could read as a pattern
            out.append('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            out.append(part)
    return "".join(out)


def _time(time_format: str, expr: str) -> str | None:
    """SQL writing the moment ``expr`` as Profile.format_time does; None if it cannot."""
    operand = expr if re.fullmatch(r"[\w.]+", expr) else f"({expr})"
    local = f"({operand} AT TIME ZONE 'Asia/Shanghai')"
    if time_format == "iso":  # isoformat(): microseconds only when there are some, then the offset
        return (f"to_char({local}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', {expr}) <> ({expr}) "
                f"THEN to_char({local}, '.US') ELSE '' END || '+' || to_char({local} - (({expr}) AT TIME ZONE 'UTC'), "
                f"'HH24:MI')")
    fmt = to_char_format(time_format)
    return None if fmt is None else f"to_char({local}, {lit(fmt)})"


def _neutral(area_code: str | None) -> dict[str, dict[str, tuple[str, str]]]:
    """records.neutral's fields over the claim's row, per kind: neutral field → (shape, SQL)."""
    base = {"project_no": (_SCALAR, "q.r_project_no"), "item_code": (_SCALAR, "q.r_item_code"),
            "credit_code": (_SCALAR, "q.r_credit_code"),
            "area_code": (_CONSTANT, "NULL::text" if area_code is None else f"{lit(area_code)}::text"),
            "rating_record_id": (_SCALAR, f"coalesce(q.r_source_id, {lit(RATING_RECORD_PREFIX)} || q.r_id)")}
    rating = {**base, "channel": (_SCALAR, "q.r_channel"), "level": (_NUMBER, "q.r_level"),
              "level_label": (_NUMBER, "q.r_level"), "assess_number": (_NUMBER, "q.r_assess_number"),
              "rated_at": (_MOMENT, "q.r_rated_at"), "reasons": (_LIST, "q.r_reasons"),
              "comment": (_SCALAR, "q.r_comment"),
              "rater": (_SCALAR, "CASE WHEN q.r_real_name THEN q.r_rater_name_masked ELSE '匿名' END")}
    case = {**base, **{name: (_JSON, f"q.payload -> {lit(name)}")
                       for name in ("outcome", "cause", "action", "contacted", "satisfied", "source_id")},
            "closed_at": (_MOMENT, "nullif(q.payload ->> 'closed_at', '')::timestamptz")}
    return {"rating": rating, "case": case}


def _key(shape: str, expr: str) -> str:
    """The value as a code table's key (text), as profiles._key writes it."""
    if shape == _JSON:
        return expr.replace(" -> ", " ->> ", 1)
    return f"{expr}::text" if shape == _NUMBER else expr


def _coded(name: str, key: str) -> str:
    """The code of ``key`` in the profile's table of neutral field ``name`` (``codes.t``, codes())."""
    return f"(codes.t -> {lit(name)} ->> ({key}))" if " " in key else f"(codes.t -> {lit(name)} ->> {key})"


def codes(profile: Profile) -> str:
    """The profile's code tables as the JSON the claim binds as ``codes`` (a jsonb looked up per value)."""
    return json.dumps(profile.codes, ensure_ascii=False)


def _json_text(expr: str) -> str:
    """SQL writing ``expr`` (text, a number, a boolean) as JSON text, ``null`` for NULL."""
    return f"coalesce(to_json({expr})::text, 'null')"


def _object(pairs: list[tuple[str, str]]) -> str:
    """SQL of a JSON object's text from (key, SQL of the value's JSON text) pairs: the keys and
    the punctuation are literals written here, the values concatenated in (half the cost per
    record of json_build_object, which converts each value and key at run time)."""
    if not pairs:
        return "'{}'"
    parts = []
    for n, (key, value) in enumerate(pairs):
        parts += [lit(("{" if n == 0 else ", ") + json.dumps(key, ensure_ascii=False) + ": "), value]
    return "(" + " || ".join(parts + ["'}'"]) + ")"


def _kind(profile: Profile, kind: str, neutral: dict[str, tuple[str, str]]):
    """(data, held) SQL of one kind of record — data as its JSON text — or None if the SQL
    cannot write it exactly."""
    pairs, held = [], []
    for name in profile.steps[_REQUIRED]:
        if name not in neutral:
            return "NULL::text", "true"
        shape, expr = neutral[name]
        if shape == _CONSTANT:  # HCP_AREA_CODE: known when the statement is made
            if expr.startswith("NULL") or expr.startswith("''"):
                return "NULL::text", "true"
            continue
        key = _key(shape, expr)
        held.append(f"{key} IS NULL OR {key} = ''")
    for platform_field, name, how, table in profile.steps[kind]:
        if name not in neutral:  # a field of the other kind: None, as in Python
            pairs.append((platform_field, "'null'"))
            continue
        shape, expr = neutral[name]
        if (how is _TIME) != (shape == _MOMENT):
            return None  # a time written plain or coded, or a non-time written as one
        if how is _TIME:
            value = _time(profile.time_format, expr)
            if value is None:
                return None
            value = _json_text(value)
        elif shape == _LIST:
            array = f"json_typeof({expr}) = 'array'"
            held.append(f"coalesce(json_typeof({expr}), 'null') NOT IN ('array', 'null')")
            if how is _PLAIN:  # `reasons or None`
                value = f"CASE WHEN {array} THEN CASE WHEN json_array_length({expr}) > 0 THEN {expr} END END"
            else:
                code = _coded(name, "e.value")
                elems = f"json_array_elements_text(CASE WHEN {array} THEN {expr} END) WITH ORDINALITY AS e(value, n)"
                value = f"(SELECT json_agg({code} ORDER BY e.n) FROM {elems})"
                held.append(f"EXISTS (SELECT FROM {elems.replace(' WITH ORDINALITY AS e(value, n)', ' e')} "
                            f"WHERE {code} IS NULL)")
            value = f"coalesce(({value})::text, 'null')"
        elif how is _PLAIN:
            value = f"coalesce(({expr})::text, 'null')" if shape == _JSON else _json_text(expr)
        else:
            key = _key(shape, expr)
            value = _coded(name, key)
            held.append(f"{key} IS NOT NULL AND {value} IS NULL")
            value = _json_text(value)
        pairs.append((platform_field, value))
    return _object(pairs), " OR ".join(f"({h})" for h in held) or "false"


def columns(profile: Profile, area_code: str | None,
            of: tuple[str, ...] = ("rating", "case")) -> tuple[str, str] | None:
    """(sql_record, sql_held) over the claim's row ``q`` and the code tables ``codes.t`` (bound as
    codes(profile)); None if the profile is coded in Python. ``of``: the kinds of record ``q``
    may be (a writer of ratings codes those alone: a shorter expression to set up per statement)."""
    neutral = _neutral(area_code)
    kinds = {}
    for kind in of:
        made = _kind(profile, kind, neutral[kind])
        if made is None:
            return None
        kinds[kind] = made
    data = "CASE q.kind " + " ".join(f"WHEN {lit(k)} THEN {d}" for k, (d, _) in kinds.items()) + " END"
    held = ("(q.r_id IS NULL OR CASE q.kind " + " ".join(f"WHEN {lit(k)} THEN {h}" for k, (_, h) in kinds.items())
            + " ELSE true END)")
    record = _object([("id", _json_text("q.record_id")), ("type", _json_text("q.kind")),
                      ("data", f"coalesce({data}, 'null')")])
    return record, held


# The coding epoch (PostgreSQL, migration 0027): moved on by triggers when a department's
# credit code, an item's code or a rating's coded columns change, or one of them is deleted.
EPOCH = "(SELECT epoch FROM exchange_coding)"


@dataclass(frozen=True)
class Coding:
    """A profile's coding as SQL (columns()) for one HCP_AREA_CODE, its code tables (codes())
    and its key: what a stored text was made by, so a record coded otherwise is recoded."""

    record: str
    held: str
    codes: str
    key: str
    rating_record: str  # the same for a rating's record alone (columns(of=("rating",)))
    rating_held: str

    def coded_for(self) -> str:
        """SQL of the ``coded_for`` a text coded now gets: the key and the coding epoch."""
        return f"({lit(self.key + ':')} || {EPOCH})"


@functools.lru_cache(maxsize=32)
def coding(profile_name: str, area_code: str | None) -> Coding | None:
    """HCP_EXCHANGE_PROFILE's coding in SQL; None if the profile is unknown or coded in Python."""
    try:
        profile = profiles.load(profile_name)
    except UnknownProfile:
        return None
    cols = columns(profile, area_code)
    if cols is None:
        return None
    tables = codes(profile)
    key = hashlib.sha256("\n".join((profile.name, profile.version, *cols, tables)).encode()).hexdigest()[:40]
    return Coding(cols[0], cols[1], tables, key, *columns(profile, area_code, ("rating",)))


def rating_rows(ratings: str) -> str:
    """The row ``q`` columns() reads, of each rating of ``ratings`` (a rowset of the ratings
    table's columns, aliased ``c``) as its 上报 record: with its department's credit code,
    its item's code and its source's id."""
    return ("(SELECT c.id AS r_id, c.project_no AS r_project_no, c.channel AS r_channel, c.level AS r_level, "
            "c.assess_number AS r_assess_number, c.rated_at AS r_rated_at, c.reasons AS r_reasons, "
            "c.comment AS r_comment, c.rater_name_masked AS r_rater_name_masked, c.real_name AS r_real_name, "
            "d.credit_code AS r_credit_code, i.code AS r_item_code, s.source_id AS r_source_id, "
            f"{lit(RATING_RECORD_PREFIX)} || c.id AS record_id, 'rating'::text AS kind, NULL::json AS payload, "
            f"c.received_at FROM {ratings} c LEFT JOIN departments d ON d.id = c.department_id "
            "LEFT JOIN service_items i ON i.id = c.item_id LEFT JOIN exchange_sources s ON s.rating_id = c.id) q")


def stored(made: Coding, codes_param: str) -> tuple[str, str, str]:
    """SQL of (coded, coded_for) over ``q`` (a rating's record: rating_rows) and the FROM item
    binding the code tables (as ``codes_param``, a placeholder of the caller's style) as
    ``codes``: what a writer of ratings stores."""
    return (f"CASE WHEN NOT {made.rating_held} THEN {made.rating_record} END", made.coded_for(),
            f"(SELECT CAST({codes_param} AS jsonb) AS t) codes")
