"""The push (上报, SPEC §8): pending outbox records to the upstream platform, in batches.

One claim: up to HCP_EXCHANGE_BATCH due records (on PostgreSQL, in a backlog, several
batches' worth: push()) — on PostgreSQL by locking them
(``FOR UPDATE SKIP LOCKED``, so concurrent pushes never take the same record, and a
sender that dies frees its records at once), in the same statement that reads their
ratings and lookups; on SQLite by a lease (``due_at`` moved ahead) committed first, so
its single writer is not held over the HTTP call, and a sender that dies leaves its
records to come due when the lease runs out. Either way a resend carries the same record
id, which the receiver drops. Then code each record in the target's profile (one that
cannot be coded is ``held``) — on PostgreSQL the claim statement itself writes each record
for HCP_EXCHANGE_PROFILE as its JSON text (service/exchange/pgcode.py) and joins them into
one row per batch (its body's records, ids and record ids), so Python handles a batch, not
its records — POST them in batches of HCP_EXCHANGE_BATCH (a claim's
batches at the same time), and write what the answers say in one
transaction: ``ok`` → ``sent`` (one UPDATE for the batch), ``rejected`` → ``rejected``
with the reason, nothing (a timeout, a 5xx, a record missing from the answer) → pending
again after an exponential backoff with jitter. Records are Core rows, never ORM objects.
"""
from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import (BigInteger, Integer, String, bindparam, case, cast, func, literal_column, select, true,
                        update)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from config import Settings
from models import IntegrationClient, OutboxRecord
from models.types import utcnow
from service.exchange import pgcode, profiles, records
from service.exchange.profiles import Held, UnknownProfile

log = logging.getLogger(__name__)
OUTBOX = OutboxRecord.__table__
HOTLINE_PROFILE = "hotline"  # the shape a 12345 system's own callback URL gets results in


class PushError(Exception):
    """The receiver did not answer the batch (unreachable, timeout, 5xx, a body not understood)."""


@dataclass
class Pushed:
    """What one push did: counts by outcome."""

    sent: int = 0
    rejected: int = 0
    held: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    # The latest due_at the claim took (PostgreSQL's grouped claim): where a drain's next claim
    # starts (_drain).
    cursor: datetime | None = None

    def add(self, other: Pushed) -> None:
        self.sent += other.sent
        self.rejected += other.rejected
        self.held += other.held
        self.failed += other.failed
        self.errors += other.errors

    @property
    def handled(self) -> int:
        return self.sent + self.rejected + self.held + self.failed


@dataclass(frozen=True)
class Target:
    url: str
    profile: str
    token: str | None  # HCP_EXCHANGE_TOKEN goes to HCP_EXCHANGE_URL only


def backoff(settings: Settings, attempts: int, rand: random.Random | None = None) -> timedelta:
    """The wait after the ``attempts``-th failure: doubling from the base up to the most, the
    upper half of it at random (so records failed together do not come back together)."""
    cap = min(settings.exchange_backoff_max_seconds, settings.exchange_backoff_seconds * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=cap / 2 + (rand or random).uniform(0, cap / 2))


def lease(settings: Settings) -> timedelta:
    """How long a claimed record is left to its sender before another may take it."""
    return timedelta(seconds=3 * settings.exchange_timeout + 30)


_RECORD = (OUTBOX.c.id, OUTBOX.c.record_id, OUTBOX.c.kind, OUTBOX.c.rating_id, OUTBOX.c.client_id,
           OUTBOX.c.payload, OUTBOX.c.attempts)


def _due(limit, *columns, after: bool = False):
    """Due pending records in due order; ``after``: only those due at or after the bound
    ``after`` (a drain's cursor, _drain)."""
    stmt = (select(*(columns or (OUTBOX.c.id,)))
            .where(OUTBOX.c.status == "pending", OUTBOX.c.due_at <= bindparam("now"))
            .order_by(OUTBOX.c.due_at, OUTBOX.c.id).limit(limit))
    return stmt.where(OUTBOX.c.due_at >= bindparam("after")) if after else stmt


def _read(claimed):
    """The claimed records (``claimed``: a CTE of their _RECORD columns, or a list of ids)
    with everything their coding needs, one Core row each (no ORM objects): the record, its
    rating's values (records.rating_columns) and the client's kind and callback URL."""
    rec = OUTBOX if isinstance(claimed, (list, BindParameter)) else claimed
    stmt = records.join_ratings(
        select(*(rec.c[c.name] for c in _RECORD), *records.rating_columns(),
               IntegrationClient.kind.label("c_kind"), IntegrationClient.callback_url.label("c_callback_url"))
        .select_from(rec).outerjoin(IntegrationClient, IntegrationClient.id == rec.c.client_id),
        rec.c.rating_id).order_by(rec.c.id)
    return stmt.where(OUTBOX.c.id.in_(claimed)) if rec is OUTBOX else stmt


# PostgreSQL: one statement locks a batch of due records (SKIP LOCKED: concurrent senders
# take different ones, none waits) and reads them with their ratings, departments, items,
# sources and clients. The locks are the claim: no row is written until the outcome. It
# also turns synchronous_commit off for its transaction (no round trip of its own): a "sent"
# lost in a crash only means the record is sent again under its record id, which the
# receiver drops, so the push's commits need not wait for the disk. The setting is an
# uncorrelated subquery, run once per statement (as a column of the claimed rows it ran once
# per record: 6 % of the database's CPU in a backlog).
_ASYNC_COMMIT = select(func.set_config("synchronous_commit", "off", True)).scalar_subquery().label("async_commit")
_PG_CLAIM = (_read(_due(bindparam("limit"), *_RECORD).with_for_update(skip_locked=True).cte("claimed"))
             .add_columns(_ASYNC_COMMIT))
_PG_CODED: dict[tuple[str, str | None], tuple] = {}  # (profile, area code) → (statement, its code tables)
# What a record coded by the claim is read as (the rest, for one coded in Python: _read again).
_CODED_ROW = ("id", "record_id", "kind", "rating_id", "client_id", "attempts", "c_kind", "c_callback_url",
              "async_commit")
_CODES = select(cast(bindparam("codes", type_=String), JSONB).label("t")).subquery("codes")


def _coding(settings: Settings) -> tuple[tuple[str, str], dict] | None:
    """HCP_EXCHANGE_PROFILE's (sql_record, sql_held) expressions over the claim's row ``q``
    (pgcode.columns) and the statement's parameters; None if the profile is coded in Python."""
    try:
        profile = profiles.load(settings.exchange_profile)
        cols = pgcode.columns(profile, settings.area_code)
    except UnknownProfile:
        return None
    return None if cols is None else (cols, {"codes": pgcode.codes(profile)})


def _coded_select(claimed, cols: tuple[str, str]):
    """The claim's rows (``claimed``: _PG_CLAIM as subquery ``q``) with each record's coding."""
    return (select(*(claimed.c[name] for name in _CODED_ROW), literal_column(cols[0]).label("sql_record"),
                   literal_column(cols[1]).label("sql_held")).select_from(claimed).join(_CODES, true()))


def _pg_claim(settings: Settings) -> tuple:
    """_PG_CLAIM with each record coded in HCP_EXCHANGE_PROFILE by the database (``sql_record``,
    its JSON text, unless ``sql_held``: pgcode.columns), and its parameters; built once per
    profile and area code."""
    key = (settings.exchange_profile, settings.area_code)
    made = _PG_CODED.get(key)
    if made is None:
        coding = _coding(settings)
        if coding is None:
            made = _PG_CLAIM, {}
        else:
            q = _PG_CLAIM.subquery("q")
            made = _coded_select(q, coding[0]).order_by(q.c.id), coding[1]
        _PG_CODED[key] = made
    return made


def _pg_batches(settings: Settings) -> tuple | None:
    """The claim's records grouped by the database into what is POSTed: one row per batch of
    HCP_EXCHANGE_BATCH records stored coded for HCP_EXCHANGE_URL as they are now
    (``coded_for`` the current coding's: outbox.py) — ``records``: their texts joined as
    the body lists them; ``ids`` as the array's text, passed back as it came to the settle;
    ``record_ids``; ``attempts`` as text, read only if the batch fails — and one row each for
    the rest (``records`` NULL: not stored coded, coded for another profile, area code or
    epoch, or for a client: coded at the claim, _pg_recode). So the claim reads no rating
    and codes nothing, and Python handles a batch, not its records. None when the profile is
    coded in Python; built once per profile and area code."""
    key = (settings.exchange_profile, settings.area_code)
    if key not in _PG_BATCHES:
        made = pgcode.coding(*key)
        stmt = None
        if made is not None:
            c = (_due(bindparam("limit"), OUTBOX.c.id, OUTBOX.c.record_id, OUTBOX.c.attempts, OUTBOX.c.coded,
                      OUTBOX.c.due_at,
                      (OUTBOX.c.coded.is_not(None) & OUTBOX.c.client_id.is_(None)
                       & (OUTBOX.c.coded_for == literal_column(made.coded_for()))).label("sql"), after=True)
                 .with_for_update(skip_locked=True).cte("claimed"))
            # Unordered below the window (its sort gives the batches their records); the
            # aggregates of a group read its rows in one pass, so ids[i], record_ids[i] and the
            # i-th text are one record's without an ORDER BY (a sort) in each.
            w = select(c, func.row_number().over(partition_by=c.c.sql, order_by=c.c.id).label("rn")).subquery("w")
            group = case((w.c.sql, (w.c.rn - 1) // bindparam("batch", type_=Integer)), else_=-w.c.id)
            stmt = (select(func.array_agg(w.c.id).cast(String).label("ids"),
                           func.array_agg(w.c.record_id).label("record_ids"),
                           func.array_agg(w.c.attempts).cast(String).label("attempts"),
                           case((func.bool_and(w.c.sql), func.string_agg(w.c.coded, literal_column("', '"))),
                                else_=None).label("records"),
                           func.max(w.c.due_at).label("last_due"), _ASYNC_COMMIT)
                    .group_by(w.c.sql, group).order_by(func.min(w.c.id)))
        _PG_BATCHES[key] = stmt
    return _PG_BATCHES[key]


def _pg_recode(settings: Settings) -> tuple:
    """The claimed records (``ids``) not stored coded as they are now, read with their ratings
    and coded by the SQL (sql_record unless sql_held: pgcode.columns), as the claim coded
    every record before they were stored coded; built once per profile and area code."""
    key = (settings.exchange_profile, settings.area_code)
    made = _PG_RECODE.get(key)
    if made is None:
        coding = _coding(settings)
        q = (_read(bindparam("ids", expanding=True))
             .add_columns(literal_column("NULL").label("async_commit")).subquery("q"))
        made = _PG_RECODE[key] = _coded_select(q, coding[0]).order_by(q.c.id), coding[1]
    return made


_PG_RECODE: dict[tuple[str, str | None], tuple] = {}
_ANY = datetime(1900, 1, 1, tzinfo=timezone.utc)  # no cursor: every due record
_PG_BATCHES: dict[tuple[str, str | None], object] = {}  # (profile, area code) → the statement, or None


def claim(session: Session, settings: Settings, now: datetime, limit: int | None = None) -> list:
    """Up to ``limit`` (default a batch) due pending records for this sender, as Core rows
    (``_read``) in id order.

    PostgreSQL: row locks (``FOR UPDATE SKIP LOCKED``) held until the caller commits the
    outcome — a sender that dies frees its records at once. SQLite (one writer): a lease —
    ``due_at`` moved ahead and committed here, so the intake is not held up over the HTTP
    call; a sender that dies leaves its records to come due when the lease runs out.
    """
    limit = limit or settings.exchange_batch
    if session.get_bind().dialect.name == "postgresql":
        stmt, params = _pg_claim(settings)
        # On the session's connection: Core rows without the ORM's execute layer (its
        # compile state and autoflush cost ~7 % of the push's Python per batch).
        return session.connection().execute(stmt, {**params, "now": now, "limit": limit}).all()
    ids = session.scalars(update(OUTBOX).where(OUTBOX.c.id.in_(_due(limit).scalar_subquery()))
                          .values(due_at=now + lease(settings)).returning(OUTBOX.c.id), {"now": now}).all()
    session.commit()
    return session.execute(_read(sorted(ids))).all() if ids else []


def _targets(settings: Settings, claimed: list) -> dict[int | None, Target]:
    """Where each client's records go: its callback URL (in the hotline shape for a 12345
    system), else HCP_EXCHANGE_URL in the exchange profile."""
    upstream = Target(settings.exchange_url, settings.exchange_profile, settings.exchange_token)
    out: dict[int | None, Target] = {None: upstream}
    for rec in claimed:
        if rec.client_id is not None and rec.client_id not in out:
            out[rec.client_id] = (Target(rec.c_callback_url, HOTLINE_PROFILE if rec.c_kind == "hotline"
                                         else settings.exchange_profile, None) if rec.c_callback_url else upstream)
    return out


def body(profile: profiles.Profile, coded: str) -> bytes:
    """A batch as sent: the profile's name and version, and the records (``coded``: their JSON
    texts joined by ", ")."""
    head = json.dumps({"profile": profile.name, "version": profile.version}, ensure_ascii=False)
    return f'{head[:-1]}, "records": [{coded}]}}'.encode()


def _json(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)


def post(target: Target, data: bytes, timeout: float) -> dict[str, dict]:
    """POST one batch (``body``); the receiver's results by record id. PushError if it gave none."""
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    request = urllib.request.Request(target.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 — the operator's URL
            answer = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        raise PushError(f"HTTP {err.code} from the receiver") from err
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as err:
        raise PushError(f"receiver unreachable: {getattr(err, 'reason', err)}") from err
    except ValueError as err:
        raise PushError("the receiver's answer is not JSON") from err
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise PushError("the receiver's answer has no results list")
    return {str(r["id"]): r for r in results if isinstance(r, dict) and "id" in r}


_MARK = (update(OUTBOX).where(OUTBOX.c.id == bindparam("b_id"))
         .values(status=bindparam("b_status"), reason=bindparam("b_reason")))
_RETRY = (update(OUTBOX).where(OUTBOX.c.id == bindparam("b_id"))
          .values(attempts=bindparam("b_attempts"), due_at=bindparam("b_due"), reason=bindparam("b_reason")))


# The sent of a claim: one UPDATE (PostgreSQL: ``id = ANY(array)``, one parameter — the
# array's text as the claim returned it, where an expanding IN renders and binds each id and
# a list is dumped id by id).
_SENT = {pg: update(OUTBOX).where(OUTBOX.c.id == func.any(cast(bindparam("b_ids", type_=String),
                                                               postgresql.ARRAY(BigInteger))) if pg
                                 else OUTBOX.c.id.in_(bindparam("b_ids", expanding=True)))
         .values(status="sent", sent_at=bindparam("b_at"), reason=None, coded=None, coded_for=None)
         for pg in (False, True)}


def _ints(array: str) -> list[int]:
    """A PostgreSQL integer array's text as the ints."""
    return [int(i) for i in array[1:-1].split(",")] if len(array) > 2 else []


@dataclass(frozen=True)
class _Rec:
    """A record of a batch the SQL coded, as the settle of a batch not wholly sent needs it."""

    id: int
    record_id: str
    attempts: int


@dataclass
class _Outcome:
    """A batch's settle: one UPDATE for the sent, one executemany each for the rest (rare)."""

    sent: list[int] = field(default_factory=list)
    sent_arrays: list[str] = field(default_factory=list)  # PostgreSQL: whole batches, their ids' array text
    marked: list[dict] = field(default_factory=list)  # rejected, held
    retry: list[dict] = field(default_factory=list)

    def mark(self, rec, status: str, reason: str) -> None:
        self.marked.append({"b_id": rec.id, "b_status": status, "b_reason": reason[:500]})

    def fail(self, settings: Settings, recs: list, reason: str, now: datetime) -> None:
        for rec in recs:
            attempts = min(rec.attempts + 1, 32000)
            self.retry.append({"b_id": rec.id, "b_attempts": attempts, "b_due": now + backoff(settings, attempts),
                               "b_reason": reason[:500]})

    def write(self, session: Session, answered: datetime) -> None:
        if self.sent_arrays:  # PostgreSQL
            ids = ",".join([a[1:-1] for a in self.sent_arrays] + [str(i) for i in self.sent])
            session.connection().execute(_SENT[True], {"b_ids": f"{{{ids}}}", "b_at": answered})
        elif self.sent:
            pg = session.get_bind().dialect.name == "postgresql"
            session.connection().execute(_SENT[pg], {"b_ids": f"{{{','.join(map(str, self.sent))}}}" if pg
                                                     else self.sent, "b_at": answered})
        if self.marked:
            session.execute(_MARK, self.marked)
        if self.retry:
            session.execute(_RETRY, self.retry)


def _coded(rec, target: Target, settings: Settings) -> str | None:
    """The record's JSON text as the claim wrote it, when it is for that profile and not held."""
    m = rec._mapping
    if target.profile == settings.exchange_profile and m.get("sql_held") is False:
        return m["sql_record"]
    return None


def _send(settings: Settings, target: Target, recs: list, neutral: dict, outcome: _Outcome,
          pool: ThreadPoolExecutor | None) -> Pushed:
    """Code ``recs`` (pairs: the record, its text from the claim or None), POST them in batches
    of HCP_EXCHANGE_BATCH (at once through ``pool``, when there are several) and note each
    answer in ``outcome``."""
    done = Pushed()
    profile = profiles.load(target.profile)
    coded, sending = [], []
    for rec, text in recs:
        if text is None:
            try:
                text = _json(records.shaped(profile, rec, neutral[rec.id]))
            except Held as held:
                outcome.mark(rec, "held", str(held))
                done.held += 1
                continue
        coded.append(text)
        sending.append(rec)
    if not sending:
        return done
    size = settings.exchange_batch
    batches = [(sending[i:i + size], coded[i:i + size]) for i in range(0, len(sending), size)]

    def one(batch: tuple[list, list]) -> dict[str, dict] | PushError:
        try:
            return post(target, body(profile, ", ".join(batch[1])), settings.exchange_timeout)
        except PushError as err:
            return err

    answers = _at_once(pool, one, batches)
    for (recs, _), results in zip(batches, answers):
        _answered(settings, recs, results, outcome, done)
    return done


def _answered(settings: Settings, recs: list, results: dict[str, dict] | PushError, outcome: _Outcome,
              done: Pushed) -> None:
    """Note in ``outcome`` what the receiver answered for a batch of records (each with ``id``,
    ``record_id``, ``attempts``)."""
    if isinstance(results, PushError):
        outcome.fail(settings, recs, str(results), utcnow())
        done.failed += len(recs)
        done.errors.append(str(results))
        return
    missing = []
    for rec in recs:
        result = results.get(rec.record_id)
        status = result.get("status") if result else None
        if status == "ok":
            outcome.sent.append(rec.id)
            done.sent += 1
        elif status == "rejected":
            outcome.mark(rec, "rejected", str(result.get("reason") or "rejected by the receiver"))
            done.rejected += 1
        else:
            missing.append(rec)
    if missing:
        outcome.fail(settings, missing, "no result for this record in the receiver's answer", utcnow())
        done.failed += len(missing)


_NO_RESULT: dict = {}


def _at_once(pool: ThreadPoolExecutor | None, fn, items: list) -> list:
    """``fn`` of each item, at the same time through ``pool`` when there are several: the
    first in this thread, the rest in the pool's (one hand-off fewer per claim)."""
    if pool is None or len(items) < 2:
        return [fn(item) for item in items]
    rest = [pool.submit(fn, item) for item in items[1:]]
    return [fn(items[0])] + [future.result() for future in rest]


def _send_coded(settings: Settings, rows: list, outcome: _Outcome, pool: ThreadPoolExecutor | None) -> Pushed:
    """POST the batches the claim coded and grouped (_pg_batches) to HCP_EXCHANGE_URL, at once
    through ``pool``, and note the answers: a batch wholly ``ok`` as its ids' array text."""
    done = Pushed()
    if not rows:
        return done
    target = Target(settings.exchange_url, settings.exchange_profile, settings.exchange_token)
    profile = profiles.load(target.profile)

    def one(row) -> dict[str, dict] | PushError:
        try:
            return post(target, body(profile, row.records), settings.exchange_timeout)
        except PushError as err:
            return err

    answers = _at_once(pool, one, rows)
    for row, results in zip(rows, answers):
        if not isinstance(results, PushError) and all(
                results.get(rid, _NO_RESULT).get("status") == "ok" for rid in row.record_ids):
            outcome.sent_arrays.append(row.ids)
            done.sent += len(row.record_ids)
            continue
        recs = [_Rec(*rec) for rec in zip(_ints(row.ids), row.record_ids, _ints(row.attempts))]
        _answered(settings, recs, results, outcome, done)
    return done


def push_batch(session: Session, settings: Settings, now: datetime | None = None, batches: int = 1,
               pool: ThreadPoolExecutor | None = None, after: datetime | None = None) -> Pushed:
    """Claim up to ``batches`` batches (on PostgreSQL, with ``after``: of those due at or after
    it), send them (at once through ``pool``) and settle them, committing the outcome; counts
    by outcome, and the claim's latest due_at."""
    now = now or utcnow()
    limit = settings.exchange_batch * batches
    grouped = _pg_batches(settings) if session.get_bind().dialect.name == "postgresql" else None
    done, outcome = Pushed(), _Outcome()
    if grouped is not None:
        rows = session.connection().execute(grouped, {"now": now, "limit": limit, "after": after or _ANY,
                                                      "batch": settings.exchange_batch}).all()
        done.cursor = max((r.last_due for r in rows), default=None)
        rest = [int(r.ids[1:-1]) for r in rows if r.records is None]
        if rest:  # not stored coded as they are now: coded here (by the SQL, else in Python)
            stmt, params = _pg_recode(settings)
            recoded = session.connection().execute(stmt, {**params, "ids": rest}).all()
            done.add(_send_records(session, settings, recoded, outcome, pool))
        done.add(_send_coded(settings, [r for r in rows if r.records is not None], outcome, pool))
    else:
        claimed = claim(session, settings, now, limit)
        if claimed:
            done.add(_send_records(session, settings, claimed, outcome, pool))
    outcome.write(session, utcnow())
    session.commit()
    return done


def _send_records(session: Session, settings: Settings, claimed: list, outcome: _Outcome,
                  pool: ThreadPoolExecutor | None) -> Pushed:
    """Code the claimed records (the texts the claim wrote, else in Python), POST them to
    their targets and note the answers in ``outcome``."""
    done = Pushed()
    targets = _targets(settings, claimed)
    texts = [_coded(r, targets[r.client_id], settings) for r in claimed]
    uncoded = [r for r, text in zip(claimed, texts) if text is None]
    if uncoded and "r_id" not in uncoded[0]._mapping:  # coded by the claim, but not these: read them whole
        whole = {r.id: r for r in session.execute(_read([r.id for r in uncoded])).all()}
        claimed = [whole.get(r.id, r) for r in claimed]
        uncoded = list(whole.values())
    ratings = {r.r_id: records.rating_values(r) for r in uncoded if r.r_id is not None}
    neutral = records.neutral(session, uncoded, settings.area_code, ratings)
    by_target: dict[Target, list] = {}
    for rec, text in zip(claimed, texts):
        by_target.setdefault(targets[rec.client_id], []).append((rec, text))
    for target, recs in by_target.items():
        done.add(_send(settings, target, recs, neutral, outcome, pool))
    return done


def push(session: Session, settings: Settings, budget_seconds: float = 50.0) -> Pushed:
    """Batches until nothing is due, a batch fails, or ``budget_seconds`` have passed.

    On PostgreSQL, when the first batch was a full one (a backlog), HCP_EXCHANGE_SENDERS
    batches are in flight at once: two claimers (one with fewer than 4 senders), each with
    its own session and connection, each claim taking its share of the senders' batches in
    one statement (SKIP LOCKED gives each claimer its own records) and POSTing them at the
    same time, one sender thread each, then settling them all in one UPDATE and commit —
    one claim, settle and commit per several batches, and one claimer's statements overlap
    the other's POSTs. SQLite (one writer) keeps one claim of one batch at a time.

    A failing receiver stops the push at once: its records wait out their backoff, and
    the next beat sweep tries again. Without HCP_EXCHANGE_URL nothing is sent (records wait;
    ``hcp exchange export`` is the offline way).
    """
    total = Pushed()
    if not settings.exchange_url:
        return total
    deadline = time.monotonic() + budget_seconds
    first = push_batch(session, settings)
    total.add(first)
    if first.handled == 0 or first.failed:
        return total
    claimers, width = 1, 1
    if (first.handled >= settings.exchange_batch and settings.exchange_senders > 1
            and session.get_bind().dialect.name == "postgresql"):
        claimers = 2 if settings.exchange_senders >= 4 else 1  # so one's claim or settle overlaps the other's POSTs
        width = settings.exchange_senders // claimers
    pools = [ThreadPoolExecutor(width - 1, thread_name_prefix="exchange-sender") if width > 1 else None
             for _ in range(claimers)]
    helpers: list[threading.Thread] = []
    outcomes: list[Pushed | BaseException] = []
    if claimers > 1:
        app = current_app._get_current_object()

        def helper(pool) -> None:
            from service.extensions import db

            with app.app_context():
                try:
                    outcomes.append(_drain(db.session, settings, deadline, width, pool))
                except BaseException as err:  # noqa: BLE001 — re-raised in the calling thread
                    outcomes.append(err)
                finally:
                    db.session.remove()

        helpers = [threading.Thread(target=helper, args=(pools[n],), name=f"exchange-claimer-{n}", daemon=True)
                   for n in range(1, claimers)]
        for thread in helpers:
            thread.start()
    try:
        total.add(_drain(session, settings, deadline, width, pools[0]))
    finally:
        for thread in helpers:
            thread.join()
        for pool in pools:
            if pool is not None:
                pool.shutdown()
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        total.add(outcome)
    return total


def _drain(session: Session, settings: Settings, deadline: float, batches: int = 1,
           pool: ThreadPoolExecutor | None = None) -> Pushed:
    """One claimer's loop: claims of ``batches`` batches until nothing is due, a batch fails,
    or the deadline.

    Each claim starts at the latest due_at of the one before (a cursor): the records already
    sent stay in the pending index's head as dead entries until a vacuum, and a claim from
    the start walks them all — in a backlog of 1,000,000, a third of the database's CPU. What
    a cursor passes by (records another claimer held and gave back) is found by a last claim
    from the start before the loop ends."""
    total = Pushed()
    after = None
    while True:
        done = push_batch(session, settings, batches=batches, pool=pool, after=after)
        total.add(done)
        if done.failed or time.monotonic() > deadline:
            return total
        if done.handled == 0:
            if after is None:
                return total
            after = None  # one more claim, from the start
            continue
        after = done.cursor
