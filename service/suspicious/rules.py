"""The suspicious-rating rules, run on each stored batch; their state is bounded and expires.

Each created rating leaves marks (``suspicious_marks``) in the windows of the rules it falls
under: its device's burst windows, its rater phone's day (the phone's blind index, never the
number), its comment's day (a hash of the comment), and a rating on a registered application
before that application was accepted is flagged at once. A window over its threshold sends
all its marked ratings to a flag of its group, one flag per department. Marks are inserted
``ON CONFLICT DO NOTHING``, so a task delivered twice counts nothing twice; they are deleted
once their window can no longer grow.
"""
from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, insert, select, text, tuple_
from sqlalchemy.orm import Session

from models import (Device, Project, Rating, SuspiciousFlag, SuspiciousFlagEvent, SuspiciousFlagRating, SuspiciousMark,
                    conflict, rowsets)
from models.types import utcnow

log = logging.getLogger(__name__)

_R = Rating.__table__.c
# A window's marks are kept this long after it closes (or after now, for ratings a kiosk
# posts late from its offline buffer), then deleted.
KEEP = timedelta(days=2)
_CHUNK = 1000
_COUNTED = 200  # windows counted per statement


def to_check(outcomes) -> list[int]:
    """The created ratings of one stored batch the worker runs the rules on (none when
    ``HCP_SUSPICIOUS_RULES`` is off)."""
    if not current_app.config["HCP_SETTINGS"].suspicious_rules:
        return []
    return [o.rating["id"] for o in outcomes if o.status == "created"]


def normal_comment(comment: str | None) -> str:
    """The comment as compared: whitespace removed (pasted copies differ in spaces only)."""
    return "".join((comment or "").split())


def _marks(rows, settings, now) -> list[dict]:
    """The marks of ``rows``: (rule, key, window, rating_id, group_key, expires_at)."""
    seconds = settings.burst_seconds
    out = []
    for r in rows:
        day = r.rated_date.isoformat()
        day_expires = max(now, r.rated_at) + timedelta(days=1) + KEEP
        t = int(r.rated_at.timestamp())
        # Two tilings of the time line, the second shifted by half a window: any run of
        # ratings within half a window lies whole in one window of one of them.
        for tiling, offset in (("a", 0), ("b", seconds // 2)):
            start = (t - offset) // seconds * seconds + offset
            out.append({"rule": "burst", "key": f"device:{r.device_id}", "window": f"{tiling}{start}",
                        "rating_id": r.id, "group_key": f"device:{r.device_id}@{day}",
                        "expires_at": max(now, r.rated_at) + timedelta(seconds=seconds) + KEEP})
        if r.rater_phone_index:
            key = f"phone:{r.rater_phone_index}"
            out.append({"rule": "phone", "key": key, "window": day, "rating_id": r.id,
                        "group_key": f"{key}@{day}", "expires_at": day_expires})
        text = normal_comment(r.comment)
        if len(text) >= settings.same_comment_min_chars:
            key = "comment:" + hashlib.sha256(text.encode()).hexdigest()[:40]
            out.append({"rule": "comment", "key": key, "window": day, "rating_id": r.id,
                        "group_key": f"{key}@{day}", "expires_at": day_expires})
    return out


# The tables _insert_ignore writes, with the columns of their rows: on PostgreSQL each chunk is
# one statement of one JSON parameter (models/rowsets.py), not one statement per row.
_PG_INSERT_IGNORE = {table.name: rowsets.insert_ignore(table, columns) for table, columns in (
    (SuspiciousMark.__table__, ("rule", "key", "window", "rating_id", "group_key", "expires_at")),
    (SuspiciousFlagRating.__table__, ("flag_id", "rating_id")))}


def _insert_ignore(session: Session, table, values: list[dict]) -> None:
    """Insert the rows ``values``, leaving those already there."""
    if session.get_bind().dialect.name == "postgresql":
        sql = _PG_INSERT_IGNORE[table.name]
        for start in range(0, len(values), _CHUNK):
            session.connection().exec_driver_sql(sql, {"rows": rowsets.dumps(values[start:start + _CHUNK])})
        return
    for start in range(0, len(values), _CHUNK):
        session.execute(conflict.insert(session, table).on_conflict_do_nothing(), values[start:start + _CHUNK])


def _over(session: Session, marks: list[dict], limits: dict) -> dict[tuple, set[int]]:
    """``{(rule, group_key): rating ids}`` of the windows ``marks`` touched that are over their limit.

    A window that was over before this batch gives only this batch's ratings (the earlier ones
    went to the flag then); one that crosses its limit now gives all its marked ratings. So a
    task's work follows its batch, not the size of the burst.
    """
    mine: dict[tuple, list[dict]] = defaultdict(list)
    for mark in marks:
        mine[(mark["rule"], mark["key"], mark["window"])].append(mark)
    m = SuspiciousMark.__table__.c
    windows = sorted(mine)
    groups: dict[tuple, set[int]] = defaultdict(set)
    crossed = []
    # A window's marks are counted only as far as the decision needs (its limit plus this
    # batch's marks in it, plus one): a long burst's window does not cost more per rating.
    cap = max(limits.values()) + max(len(batch) for batch in mine.values()) + 1
    for start in range(0, len(windows), _COUNTED):
        for rule, key, window, n in _capped_counts(session, windows[start:start + _COUNTED], cap):
            if n <= limits[rule]:
                continue
            batch = mine[(rule, key, window)]
            if n - len(batch) > limits[rule]:
                for mark in batch:
                    groups[(rule, mark["group_key"])].add(mark["rating_id"])
            else:
                crossed.append((rule, key, window))
    for start in range(0, len(crossed), _CHUNK):
        chunk = crossed[start:start + _CHUNK]
        if session.get_bind().dialect.name == "postgresql":
            found = session.connection().exec_driver_sql(_PG_WINDOW_MARKS, {"rows": _windows_param(chunk)})
        else:
            found = session.execute(select(m.rule, m.rating_id, m.group_key).where(
                tuple_(m.rule, m.key, m.window).in_(chunk)))
        for rule, rating_id, group_key in found:
            groups[(rule, group_key)].add(rating_id)
    return groups


# PostgreSQL: one statement whose text never changes with the number of windows (the windows
# as one JSON parameter, models/rowsets.py), so neither SQLAlchemy nor psycopg parses a new
# text per batch — building and splitting a UNION ALL of a batch's ~100 windows was most of a
# process_stored task's time with many kiosks in the profile, and three arrays after it cost
# psycopg's element-by-element dumping (~3 µs a string).
_WINDOW = ("rule", "key", "window")
_PG_WINDOWS = rowsets.recordset(SuspiciousMark.__table__, _WINDOW)
_PG_CAPPED_COUNTS = (
    'SELECT t.rule, t.key, t."window", (SELECT count(*) FROM (SELECT 1 FROM suspicious_marks m '
    'WHERE m.rule = t.rule AND m.key = t.key AND m."window" = t."window" LIMIT %(cap)s) x) AS n '
    f"FROM {_PG_WINDOWS}")
_PG_WINDOW_MARKS = (
    f'SELECT m.rule, m.rating_id, m.group_key FROM {_PG_WINDOWS} JOIN suspicious_marks m '
    'ON m.rule = t.rule AND m.key = t.key AND m."window" = t."window"')


def _windows_param(windows: list[tuple]) -> str:
    return rowsets.dumps([dict(zip(_WINDOW, w)) for w in windows])


def _capped_counts(session: Session, windows: list[tuple], cap: int) -> list[tuple]:
    """(rule, key, window, min(marks, cap)) of each window: each count reads at most ``cap``
    index entries of the primary key, however many marks the window holds."""
    if session.get_bind().dialect.name == "postgresql":
        return [tuple(row) for row in session.connection().exec_driver_sql(_PG_CAPPED_COUNTS, {
            "cap": cap, "rows": _windows_param(windows)})]
    parts, params = [], {"cap": cap}
    for i, (rule, key, window) in enumerate(windows):
        parts.append(f"SELECT :r{i} AS rule, :k{i} AS key, :w{i} AS win, count(*) AS n FROM "
                     f"(SELECT 1 FROM suspicious_marks WHERE rule = :r{i} AND key = :k{i} AND \"window\" = :w{i} "
                     f"LIMIT :cap) x{i}")
        params.update({f"r{i}": rule, f"k{i}": key, f"w{i}": window})
    return session.execute(text(" UNION ALL ".join(parts)), params).all()


def _before_acceptance(session: Session, rows) -> dict[tuple, set[int]]:
    """Ratings on a registered application rated before its acceptance (受理)."""
    numbers = {r.project_no for r in rows if r.project_no}
    if not numbers:
        return {}
    accepted = dict(session.execute(select(Project.project_no, Project.accepted_at).where(
        Project.project_no.in_(sorted(numbers)), Project.accepted_at.is_not(None))).all())
    groups: dict[tuple, set[int]] = defaultdict(set)
    for r in rows:
        at = accepted.get(r.project_no)
        if at is not None and r.rated_at < at:
            groups[("project", f"project:{r.project_no}")].add(r.id)
    return groups


def _subject(rule: str, group_key: str, sample, devices: dict[int, str]) -> str:
    """What a flag's ratings have in common, for the queue (never a clear phone number);
    ``devices`` holds the names of the burst groups' devices."""
    if rule == "burst":
        name = devices.get(sample.device_id)
        return f"{name}（设备 {sample.device_id}）" if name is not None else f"设备 {sample.device_id}"
    if rule == "phone":
        return sample.rater_phone_masked or "实名评价人"
    if rule == "comment":
        return (sample.comment or "")[:100]
    return group_key.split(":", 1)[1]


_GROUP = ("rule", "group_key", "department_id")  # a flag's group, one per department
_F = SuspiciousFlag.__table__.c
_FR = SuspiciousFlagRating.__table__.c
# PostgreSQL: a batch's groups' flags, its flags' new ratings and their history rows are each
# one statement of one JSON parameter, whatever the number of groups (models/rowsets.py).
_PG_GROUP_FLAGS = (
    f"SELECT f.rule, f.group_key, f.department_id, f.id, f.state, f.generation "
    f"FROM {rowsets.recordset(SuspiciousFlag.__table__, _GROUP)} JOIN suspicious_flags f "
    "ON f.rule = t.rule AND f.group_key = t.group_key AND f.department_id = t.department_id ORDER BY f.id")
_OPENED = ("rule", "group_key", "department_id", "generation", "subject", "state", "opened_at")
_PG_OPEN = (
    f"INSERT INTO suspicious_flags ({', '.join(_OPENED)}) SELECT {', '.join(_OPENED)} "
    f"FROM {rowsets.recordset(SuspiciousFlag.__table__, _OPENED)} "
    "ON CONFLICT (rule, group_key, department_id, generation) DO NOTHING RETURNING rule, group_key, department_id, id")
_EVENT = ("flag_id", "at", "actor_id", "action", "from_state", "to_state", "ratings")
_PG_EVENTS = rowsets.insert(SuspiciousFlagEvent.__table__, _EVENT)


def _group_flags(session: Session, groups: list[tuple]) -> dict[tuple, list]:
    """``{(rule, group_key, department_id): [(id, state, generation), …] by id}`` of ``groups``' flags."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.connection().exec_driver_sql(
            _PG_GROUP_FLAGS, {"rows": rowsets.dumps([dict(zip(_GROUP, g)) for g in groups])}).all()
    else:
        rows = []
        for start in range(0, len(groups), _CHUNK):
            rows += session.execute(select(_F.rule, _F.group_key, _F.department_id, _F.id, _F.state, _F.generation)
                                    .where(tuple_(_F.rule, _F.group_key, _F.department_id).in_(
                                        groups[start:start + _CHUNK])).order_by(_F.id)).all()
    out: dict[tuple, list] = defaultdict(list)
    for rule, group_key, department_id, flag_id, state, generation in rows:
        out[(rule, group_key, department_id)].append((flag_id, state, generation))
    return out


def _in_flags(session: Session, flag_ids: list[int], ids: list[int]) -> dict[int, set[int]]:
    """``{flag_id: rating ids}``: which of ``ids`` the flags ``flag_ids`` hold already (read by
    id: a flag may be large)."""
    out: dict[int, set[int]] = defaultdict(set)
    if not flag_ids or not ids:
        return out
    dialect = session.get_bind().dialect.name
    for start in range(0, len(ids), _CHUNK):
        for flag_id, rating_id in session.execute(select(_FR.flag_id, _FR.rating_id).where(
                rowsets.id_in(_FR.flag_id, flag_ids, dialect),
                rowsets.id_in(_FR.rating_id, ids[start:start + _CHUNK], dialect))):
            out[flag_id].add(rating_id)
    return out


def _open(session: Session, rows: list[dict]) -> dict[tuple, int]:
    """Open the flags ``rows`` (columns ``_OPENED``): ``{group: new flag id}``, without the
    groups whose generation exists already (opened by a concurrent transaction, now
    committed: the unique key waits for it)."""
    if not rows:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        return {(rule, key, dept): flag_id for rule, key, dept, flag_id in session.connection().exec_driver_sql(
            _PG_OPEN, {"rows": rowsets.dumps(rows)})}
    out = {}
    for row in rows:
        flag_id = session.scalar(
            conflict.insert(session, SuspiciousFlag.__table__).values(**row)
            .on_conflict_do_nothing(index_elements=[_F.rule, _F.group_key, _F.department_id, _F.generation])
            .returning(_F.id))
        if flag_id is not None:
            out[(row["rule"], row["group_key"], row["department_id"])] = flag_id
    return out


def _flag_groups(session: Session, groups: dict[tuple, set[int]], now, rows=()) -> list[int]:
    """Put each group's ratings not yet in one of its flags into its open flag (opened if there
    is none), one flag per department; returns the flags opened or grown, in group order.
    ``rows``: rating rows already read (id, department_id, device_id, rater_phone_masked, comment).

    A fixed handful of statements for all the groups: their flags, the ratings those hold
    already, the flags to open, the new flag ratings and the history rows."""
    if not groups:
        return []
    # The members' departments and what the flag's subject is made from.
    every = sorted({i for members in groups.values() for i in members})
    info = {r.id: r for r in rows}
    missing, dialect = [i for i in every if i not in info], session.get_bind().dialect.name
    for start in range(0, len(missing), _CHUNK):
        for r in session.execute(select(_R.id, _R.department_id, _R.device_id, _R.rater_phone_masked, _R.comment)
                                 .where(rowsets.id_in(_R.id, missing[start:start + _CHUNK], dialect))):
            info[r.id] = r
    members_of: dict[tuple, set[int]] = {}
    for (rule, group_key), members in sorted(groups.items()):
        by_department: dict[int, set[int]] = defaultdict(set)
        for i in members:
            if i in info:
                by_department[info[i].department_id].add(i)
        for department_id, dept_ids in sorted(by_department.items()):
            members_of[(rule, group_key, department_id)] = dept_ids
    flags = _group_flags(session, list(members_of))
    held = _in_flags(session, sorted({f[0] for fs in flags.values() for f in fs}), every)
    todo: dict[tuple, tuple[int, str, set[int]]] = {}  # group: (flag id or None, action, ratings)
    opening = []
    for group, ids in members_of.items():
        ids = ids - set().union(*(held[f[0]] for f in flags.get(group, ())))
        if not ids:
            continue
        open_ = [f for f in flags.get(group, ()) if f[1] == "open"]
        if open_:
            todo[group] = (open_[0][0], "join", ids)
        else:
            # A group decided before and joined by more ratings: a new flag, so no decision is
            # widened to ratings nobody looked at.
            generation = max((f[2] for f in flags.get(group, ())), default=0) + 1
            todo[group] = (None, "open", ids)
            opening.append((group, generation, info[min(ids)]))
    if opening:
        burst = sorted({sample.device_id for (rule, _k, _d), _g, sample in opening if rule == "burst"})
        devices = dict(session.execute(select(Device.id, Device.name).where(Device.id.in_(burst))).all()
                       if burst else ())
        opened = _open(session, [
            {"rule": rule, "group_key": key, "department_id": dept, "generation": generation,
             "subject": _subject(rule, key, sample, devices), "state": "open", "opened_at": now}
            for (rule, key, dept), generation, sample in opening])
        for (rule, key, dept), generation, _sample in opening:
            group = (rule, key, dept)
            if group in opened:
                todo[group] = (opened[group], "open", todo[group][2])
                continue
            # Another transaction opened it meanwhile (a PUT and the worker): join it.
            flag_id = session.scalar(select(_F.id).where(
                _F.rule == rule, _F.group_key == key, _F.department_id == dept, _F.generation == generation))
            ids = todo[group][2] - _in_flags(session, [flag_id], sorted(todo[group][2]))[flag_id]
            todo[group] = (flag_id, "join", ids)
    todo = {group: t for group, t in todo.items() if t[2]}
    if not todo:
        return []
    _insert_ignore(session, SuspiciousFlagRating.__table__, [
        {"flag_id": flag_id, "rating_id": i}
        for flag_id, i in sorted((flag_id, i) for flag_id, _a, ids in todo.values() for i in ids)])
    events = [{"flag_id": flag_id, "at": now, "actor_id": None, "action": action,
               "from_state": None if action == "open" else "open", "to_state": "open", "ratings": len(ids)}
              for flag_id, action, ids in todo.values()]
    # Core inserts: ORM objects here would cost the worker a flush of the unit of work.
    if dialect == "postgresql":
        session.connection().exec_driver_sql(_PG_EVENTS, {"rows": rowsets.dumps(events)})
    else:
        session.execute(insert(SuspiciousFlagEvent), events)
    touched = [flag_id for flag_id, _a, _ids in todo.values()]
    log.info("suspicious ratings: flags %s opened or grown", touched)
    return touched


# A Core statement, built once: the ORM's bulk delete would also look for the rows in the
# session, which holds none.
_DELETE_EXPIRED = delete(SuspiciousMark.__table__).where(SuspiciousMark.__table__.c.expires_at < bindparam("now"))
# Expired marks are deleted at most this often per process: the delete looks at the whole
# table when few marks have expired but its statistics are old, and in every task it was the
# biggest part of the rules' cost (56 µs a rating of ~150, batches of 80). A mark left
# longer costs nothing but its row: a closed window gains no new mark.
PRUNE_EVERY = timedelta(seconds=60)


def _prune(session: Session, now) -> None:
    """Delete the expired marks, if this process has not in the last PRUNE_EVERY (by the
    application's clock; a clock set back prunes at once)."""
    last = current_app.extensions.get("hcp_marks_pruned_at")
    if last is not None and last <= now < last + PRUNE_EVERY:
        return
    session.execute(_DELETE_EXPIRED, {"now": now})
    current_app.extensions["hcp_marks_pruned_at"] = now


def check(session: Session, rating_ids: list[int], settings=None) -> list[int]:
    """Run the rules on the ratings ``rating_ids``; the caller commits. Returns the flags opened or grown."""
    settings = settings or current_app.config["HCP_SETTINGS"]
    ids = sorted({int(i) for i in rating_ids})
    if not ids:
        return []
    now = utcnow()
    rows, dialect = [], session.get_bind().dialect.name
    for start in range(0, len(ids), _CHUNK):
        rows += session.execute(select(
            _R.id, _R.device_id, _R.department_id, _R.rated_at, _R.rated_date, _R.rater_phone_index,
            _R.rater_phone_masked, _R.comment, _R.project_no).where(
                rowsets.id_in(_R.id, ids[start:start + _CHUNK], dialect))).all()
    _prune(session, now)  # the marks whose window can no longer grow
    marks = sorted(_marks(rows, settings, now), key=lambda m: (m["rule"], m["key"], m["window"], m["rating_id"]))
    _insert_ignore(session, SuspiciousMark.__table__, marks)
    limits = {"burst": settings.burst_ratings, "phone": settings.phone_daily_max,
              "comment": settings.same_comment_daily_max}
    groups = _over(session, marks, limits) if marks else {}
    for key, members in _before_acceptance(session, rows).items():
        groups.setdefault(key, set()).update(members)
    return _flag_groups(session, groups, now, rows)


def recheck_project(session: Session, project_no: str, accepted_at, settings=None) -> list[int]:
    """Flag the ratings of ``project_no`` made before ``accepted_at``: for an application
    registered (or given its acceptance time) after its ratings arrived, whose ratings the
    rules could not check then. Bounded: the ratings of that one 办件编号 (by its index);
    ratings already in the group's flags are not added twice. The caller commits."""
    settings = settings or current_app.config["HCP_SETTINGS"]
    if not settings.suspicious_rules or accepted_at is None:
        return []
    ids = set(session.scalars(select(_R.id).where(_R.project_no == project_no, _R.rated_at < accepted_at)))
    if not ids:
        return []
    return _flag_groups(session, {("project", f"project:{project_no}"): ids}, utcnow())
