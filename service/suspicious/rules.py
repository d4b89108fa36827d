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
from sqlalchemy import delete, insert, select, text, tuple_
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
        for rule, rating_id, group_key in session.execute(
                select(m.rule, m.rating_id, m.group_key).where(
                    tuple_(m.rule, m.key, m.window).in_(crossed[start:start + _CHUNK]))):
            groups[(rule, group_key)].add(rating_id)
    return groups


# PostgreSQL: one statement whose text never changes with the number of windows (the windows
# as three array parameters), so neither SQLAlchemy nor psycopg parses a new text per batch —
# building and splitting the UNION ALL below of a batch's ~100 windows was most of a
# process_stored task's time with many kiosks in the profile.
_PG_CAPPED_COUNTS = (
    'SELECT w.rule, w.key, w.win, (SELECT count(*) FROM (SELECT 1 FROM suspicious_marks m '
    'WHERE m.rule = w.rule AND m.key = w.key AND m."window" = w.win LIMIT %(cap)s) x) AS n '
    "FROM unnest(%(rules)s::varchar[], %(keys)s::varchar[], %(wins)s::varchar[]) AS w(rule, key, win)")


def _capped_counts(session: Session, windows: list[tuple], cap: int) -> list[tuple]:
    """(rule, key, window, min(marks, cap)) of each window: each count reads at most ``cap``
    index entries of the primary key, however many marks the window holds."""
    if session.get_bind().dialect.name == "postgresql":
        return [tuple(row) for row in session.connection().exec_driver_sql(_PG_CAPPED_COUNTS, {
            "cap": cap, "rules": [w[0] for w in windows], "keys": [w[1] for w in windows],
            "wins": [w[2] for w in windows]})]
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


def _subject(session: Session, rule: str, group_key: str, sample) -> str:
    """What a flag's ratings have in common, for the queue (never a clear phone number)."""
    if rule == "burst":
        device = session.get(Device, sample.device_id)
        return f"{device.name}（设备 {device.id}）" if device else f"设备 {sample.device_id}"
    if rule == "phone":
        return sample.rater_phone_masked or "实名评价人"
    if rule == "comment":
        return (sample.comment or "")[:100]
    return group_key.split(":", 1)[1]


def _flag(session: Session, rule: str, group_key: str, department_id: int, ids: set[int], info: dict,
          now) -> int | None:
    """Put ``ids`` not yet in a flag of the group into its open flag (opened if there is none)."""
    f, fr = SuspiciousFlag.__table__.c, SuspiciousFlagRating.__table__.c
    flags = session.execute(select(f.id, f.state, f.generation).where(
        f.rule == rule, f.group_key == group_key, f.department_id == department_id).order_by(f.id)).all()
    if flags:  # the ids already in one of the group's flags (read by id: a flag may be large)
        known = set(session.scalars(select(fr.rating_id).where(
            fr.flag_id.in_([x.id for x in flags]), fr.rating_id.in_(sorted(ids)))))
        ids = ids - known
    if not ids:
        return None
    open_ = [x for x in flags if x.state == "open"]
    if open_:
        flag_id, action = open_[0].id, "join"
    else:
        # A group decided before and joined by more ratings: a new flag, so no decision is
        # widened to ratings nobody looked at.
        generation = max((x.generation for x in flags), default=0) + 1
        flag_id, action = _open(session, rule, group_key, department_id, generation,
                                _subject(session, rule, group_key, info[min(ids)]), now), "open"
        if flag_id is None:  # another transaction opened it meanwhile (a PUT and the worker): join it
            flag_id, action = session.scalar(select(f.id).where(
                f.rule == rule, f.group_key == group_key, f.department_id == department_id,
                f.generation == generation)), "join"
            ids = ids - set(session.scalars(select(fr.rating_id).where(
                fr.flag_id == flag_id, fr.rating_id.in_(sorted(ids)))))
            if not ids:
                return None
    _insert_ignore(session, SuspiciousFlagRating.__table__, [{"flag_id": flag_id, "rating_id": i} for i in sorted(ids)])
    # A Core insert: an ORM object here would cost the worker a flush of the unit of work.
    session.execute(insert(SuspiciousFlagEvent).values(
        flag_id=flag_id, at=now, actor_id=None, action=action, from_state=None if action == "open" else "open",
        to_state="open", ratings=len(ids)))
    return flag_id


def _open(session: Session, rule: str, group_key: str, department_id: int, generation: int, subject: str,
          now) -> int | None:
    """A new open flag's id; None when that generation of the group exists already (opened by
    a concurrent transaction, now committed: the unique key waits for it)."""
    f = SuspiciousFlag.__table__.c
    return session.scalar(
        conflict.insert(session, SuspiciousFlag.__table__)
        .values(rule=rule, group_key=group_key, department_id=department_id, generation=generation,
                subject=subject, state="open", opened_at=now)
        .on_conflict_do_nothing(index_elements=[f.rule, f.group_key, f.department_id, f.generation])
        .returning(f.id))


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
    session.execute(delete(SuspiciousMark).where(SuspiciousMark.expires_at < now))
    marks = sorted(_marks(rows, settings, now), key=lambda m: (m["rule"], m["key"], m["window"], m["rating_id"]))
    _insert_ignore(session, SuspiciousMark.__table__, marks)
    limits = {"burst": settings.burst_ratings, "phone": settings.phone_daily_max,
              "comment": settings.same_comment_daily_max}
    groups = _over(session, marks, limits) if marks else {}
    for key, members in _before_acceptance(session, rows).items():
        groups.setdefault(key, set()).update(members)
    return _flag_groups(session, groups, now)


def _flag_groups(session: Session, groups: dict[tuple, set[int]], now) -> list[int]:
    """Put each group's ratings into its flags, one per department; returns the flags opened or grown."""
    if not groups:
        return []
    # The members' departments and what the flag's subject is made from.
    every = sorted({i for members in groups.values() for i in members})
    info, dialect = {}, session.get_bind().dialect.name
    for start in range(0, len(every), _CHUNK):
        for r in session.execute(select(_R.id, _R.department_id, _R.device_id, _R.rater_phone_masked, _R.comment)
                                 .where(rowsets.id_in(_R.id, every[start:start + _CHUNK], dialect))):
            info[r.id] = r
    touched = []
    for (rule, group_key), members in sorted(groups.items()):
        by_department: dict[int, set[int]] = defaultdict(set)
        for i in members:
            if i in info:
                by_department[info[i].department_id].add(i)
        for department_id, dept_ids in sorted(by_department.items()):
            flag_id = _flag(session, rule, group_key, department_id, dept_ids, info, now)
            if flag_id is not None:
                touched.append(flag_id)
    if touched:
        log.info("suspicious ratings: flags %s opened or grown", touched)
    return touched


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
