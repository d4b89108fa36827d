"""The push (上报, SPEC §8): pending outbox records to the upstream platform, in batches.

One batch: claim up to HCP_EXCHANGE_BATCH due records (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so concurrent pushes never take the same record) by moving their ``due_at``
a lease ahead. On PostgreSQL the claimed rows stay locked until the batch's outcome
commits (other senders skip them; a sender that dies frees them at once); on SQLite the
claim is committed first, so its single writer is not held over the HTTP call, and a
sender that dies leaves its records to come due when the lease runs out. Either way a
resend carries the same record id, which the receiver drops. Then code each record in
the target's profile (one that cannot be coded is ``held``), POST them, and write what
the answer says: ``ok`` → ``sent``, ``rejected`` → ``rejected`` with the reason,
nothing (a timeout, a 5xx, a record missing from the answer) → pending again after an exponential backoff with jitter.
"""
from __future__ import annotations

import json
import logging
import random
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, aliased

from config import Settings
from models import IntegrationClient, OutboxRecord
from models.types import utcnow
from service.exchange import profiles, records
from service.exchange.profiles import Held

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


def claim(session: Session, settings: Settings, now: datetime, rows: bool = False) -> list:
    """Up to a batch of due pending records leased to this sender — their ids, or (``rows``)
    the records themselves from the same statement; the caller commits."""
    due = (select(OUTBOX.c.id).where(OUTBOX.c.status == "pending", OUTBOX.c.due_at <= now)
           .order_by(OUTBOX.c.due_at, OUTBOX.c.id).limit(settings.exchange_batch))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = session.scalars(update(OutboxRecord).where(OutboxRecord.id.in_(due.scalar_subquery()))
                              .values(due_at=now + lease(settings))
                              .returning(OutboxRecord if rows else OutboxRecord.id)
                              .execution_options(synchronize_session=False)).all()
    return sorted(claimed, key=lambda r: r.id) if rows else sorted(claimed)


def claim_with_values(session: Session, settings: Settings, now: datetime) -> tuple[list, dict, dict]:
    """PostgreSQL: one statement claims a batch (``UPDATE … RETURNING`` in a CTE, SKIP LOCKED)
    and reads everything its records need — the rating with its lookups, the client's target.
    The claimed records (ORM rows, locked until the caller commits), their ratings by
    rating id, their clients by id."""
    due = (select(OUTBOX.c.id).where(OUTBOX.c.status == "pending", OUTBOX.c.due_at <= now)
           .order_by(OUTBOX.c.due_at, OUTBOX.c.id).limit(settings.exchange_batch)
           .with_for_update(skip_locked=True))
    cte = (update(OUTBOX).where(OUTBOX.c.id.in_(due.scalar_subquery())).values(due_at=now + lease(settings))
           .returning(*OUTBOX.c).cte("claimed"))
    rec = aliased(OutboxRecord, cte)
    stmt = records.join_ratings(
        select(rec, *records.rating_columns(), IntegrationClient.kind.label("c_kind"),
               IntegrationClient.callback_url.label("c_callback_url"))
        .outerjoin(IntegrationClient, IntegrationClient.id == rec.client_id), rec.rating_id).order_by(rec.id)
    claimed, ratings, clients = [], {}, {}
    for row in session.execute(stmt):
        claimed.append(row[0])
        if (values := records.rating_values(row)) is not None:
            ratings[values["id"]] = values
        if row[0].client_id is not None:
            clients[row[0].client_id] = (row.c_kind, row.c_callback_url)
    return claimed, ratings, clients


def _targets(session: Session, settings: Settings, claimed: list[OutboxRecord],
             clients: dict[int, tuple] | None = None) -> dict[int | None, Target]:
    """Where each client's records go: its callback URL (in the hotline shape for a 12345
    system), else HCP_EXCHANGE_URL in the exchange profile."""
    upstream = Target(settings.exchange_url, settings.exchange_profile, settings.exchange_token)
    out: dict[int | None, Target] = {None: upstream}
    if clients is None:
        ids = {r.client_id for r in claimed if r.client_id is not None}
        clients = {c.id: (c.kind, c.callback_url) for c in session.execute(
            select(IntegrationClient.id, IntegrationClient.kind, IntegrationClient.callback_url)
            .where(IntegrationClient.id.in_(ids)))} if ids else {}
    for client_id, (kind, callback_url) in clients.items():
        out[client_id] = (Target(callback_url, HOTLINE_PROFILE if kind == "hotline" else settings.exchange_profile,
                                 None) if callback_url else upstream)
    return out


def post(target: Target, body: dict, timeout: float) -> dict[str, dict]:
    """POST one batch; the receiver's results by record id. PushError if it gave none."""
    data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
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


def _fail(session: Session, settings: Settings, recs: list[OutboxRecord], reason: str, now: datetime) -> None:
    for rec in recs:
        rec.attempts = min(rec.attempts + 1, 32000)
        rec.due_at = now + backoff(settings, rec.attempts)
        rec.reason = reason[:500]


def _send(session: Session, settings: Settings, target: Target, recs: list[OutboxRecord],
          neutral: dict, now: datetime) -> Pushed:
    done = Pushed()
    profile = profiles.load(target.profile)
    shaped = {}
    for rec in recs:
        try:
            shaped[rec.record_id] = records.shaped(profile, rec, neutral[rec.id])
        except Held as held:
            rec.status, rec.reason = "held", str(held)[:500]
            done.held += 1
    sending = [r for r in recs if r.record_id in shaped]
    if not sending:
        return done
    body = {"profile": profile.name, "version": profile.version, "records": list(shaped.values())}
    try:
        results = post(target, body, settings.exchange_timeout)
    except PushError as err:
        _fail(session, settings, sending, str(err), utcnow())
        done.failed += len(sending)
        done.errors.append(str(err))
        return done
    answered = utcnow()
    missing, sent = [], []
    for rec in sending:
        result = results.get(rec.record_id)
        status = result.get("status") if result else None
        if status == "ok":
            sent.append(rec.id)
        elif status == "rejected":
            rec.status, rec.reason = "rejected", str(result.get("reason") or "rejected by the receiver")[:500]
            done.rejected += 1
        else:
            missing.append(rec)
    if sent:  # the common case, set-based: one UPDATE for the batch, not one per record
        # Core, not ORM: the batch's objects are not read again before the commit expires them.
        session.execute(update(OUTBOX).where(OUTBOX.c.id.in_(sent)).values(status="sent", sent_at=answered,
                                                                           reason=None))
        done.sent += len(sent)
    if missing:
        _fail(session, settings, missing, "no result for this record in the receiver's answer", answered)
        done.failed += len(missing)
    return done


def push_batch(session: Session, settings: Settings, now: datetime | None = None) -> Pushed:
    """Claim, send and settle one batch, committing the claim and the outcome; counts by outcome."""
    now = now or utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # A "sent" lost in a crash only means the record is sent again under its record id,
        # which the receiver drops: the push's own commits need not wait for the disk.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    ratings = clients = None
    if postgres:
        # The claimed rows stay locked until the outcome commits (one transaction per batch;
        # a dead sender's rows come free at once), so they are read by the claim itself,
        # with their ratings and clients: one statement, no per-record query.
        claimed, ratings, clients = claim_with_values(session, settings, now)
    else:
        # SQLite has one writer: the claim (its lease) is committed before the HTTP call, so
        # the intake is not held up meanwhile; the rows are read after the commit, which
        # would have expired them (a reload per attribute).
        ids = claim(session, settings, now)
        session.commit()
        claimed = list(session.scalars(select(OutboxRecord).where(OutboxRecord.id.in_(ids))
                                       .order_by(OutboxRecord.id))) if ids else []
    if not claimed:
        session.commit()
        return Pushed()
    done = Pushed()
    neutral = records.neutral(session, claimed, settings.area_code, ratings)
    targets = _targets(session, settings, claimed, clients)
    by_target: dict[Target, list[OutboxRecord]] = {}
    for rec in claimed:
        by_target.setdefault(targets.get(rec.client_id, targets[None]), []).append(rec)
    for target, recs in by_target.items():
        done.add(_send(session, settings, target, recs, neutral, now))
    session.commit()
    return done


def push(session: Session, settings: Settings, budget_seconds: float = 50.0) -> Pushed:
    """Batches until nothing is due, a batch fails, or ``budget_seconds`` have passed.

    A failing receiver stops the push at once: its records wait out their backoff, and
    the next beat sweep tries again. Without HCP_EXCHANGE_URL nothing is sent (records wait;
    ``hcp exchange export`` is the offline way).
    """
    total = Pushed()
    if not settings.exchange_url:
        return total
    started = utcnow()
    while True:
        done = push_batch(session, settings)
        total.add(done)
        if done.handled == 0 or done.failed or (utcnow() - started).total_seconds() > budget_seconds:
            return total
