"""Notifications: exactly-once bookkeeping and the pluggable senders that deliver them.

Something to tell people (a red card, a morning digest) is *issued* once: a row with a
unique key (``case:12:close:red``) is inserted with ``ON CONFLICT DO NOTHING``, and only
the transaction that inserted it goes on to add one *delivery* row per destination
(``case:12:close:red:webhook:3``, ``case:12:close:red:email:u7``). After that transaction
commits, each delivery is sent by its own Celery task (``workers.tasks.send_notification``),
which retries with backoff on failure and never touches the case — a dead webhook cannot
block or roll back the workflow. Kinds with a batch sender (the invitations' SMS) are sent
many to a task instead (``send_batched``, ``deliver_batch``, ``workers.tasks.send_batch``).

Senders are plain functions registered per channel in ``SENDERS``: ``webhook`` posts the
WeCom / DingTalk group-robot JSON to the department's ``notify_webhook``; ``email`` goes
over SMTP (HCP_SMTP_*). Which apply is configured per department and user: a department
with a ``notify_webhook`` gets group posts, users with an ``email`` and the department's
``notify_email`` get mail (when HCP_SMTP_HOST is set).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from config import Settings
from models import Department, Notification, User, conflict
from models.types import utcnow
from service.privacy import decrypt

log = logging.getLogger(__name__)

PREFIX = "【好差评】"  # also the keyword a DingTalk robot's keyword security can require


class SendError(Exception):
    """A delivery that did not go out this time; the send task retries it."""


class Undeliverable(Exception):
    """A delivery that can never go out (its destination was removed); not retried."""


Sender = Callable[[dict, Settings, Session], None]
SENDERS: dict[str, Sender] = {}
# Many deliveries at once: ``fn([(id, payload), …], settings, session)`` answers each id's
# outcome (None: sent; SendError; Undeliverable).
BatchSender = Callable[[list[tuple[int, dict]], Settings, Session], dict[int, Exception | None]]
BATCH_SENDERS: dict[str, BatchSender] = {}


def sender(channel: str) -> Callable[[Sender], Sender]:
    """Register ``fn(payload, settings, session)`` as the sender of ``channel`` deliveries."""
    def register(fn: Sender) -> Sender:
        SENDERS[channel] = fn
        return fn
    return register


def batch_sender(channel: str) -> Callable[[BatchSender], BatchSender]:
    """Register ``fn`` as the sender of ``channel`` deliveries in batches (``deliver_batch``);
    its ``sender`` is still the one a single delivery (``deliver``) goes through."""
    def register(fn: BatchSender) -> BatchSender:
        BATCH_SENDERS[channel] = fn
        return fn
    return register


# -- issuing ---------------------------------------------------------------------------

def claim(session: Session, key: str, kind: str, payload: dict | None = None,
          case_id: int | None = None, sent: datetime | None = None) -> int | None:
    """Insert the notification row ``key`` unless it exists; its id if this call made it.

    The unique key, not a read-then-write, makes "once" hold across concurrent sweeps.
    """
    stmt = (conflict.insert(session, Notification)
            .values(key=key, kind=kind, case_id=case_id, payload=payload, created_at=utcnow(),
                    sent_at=sent, attempts=0)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(Notification.id))
    return session.scalar(stmt)


def addresses(value: str | None) -> list[str]:
    """The addresses in a ``notify_email`` column (comma, semicolon or space separated)."""
    return [a for a in re.split(r"[,;\s]+", value or "") if a]


def deliveries(session: Session, key: str, *, subject: str, text: str, users: Iterable[User],
               departments: Iterable[Department], case_id: int | None = None,
               department_mail: bool = True) -> list[int]:
    """Add the delivery rows of issued notification ``key``; return their ids to send.

    One group post per department with a webhook; one e-mail per user with an address,
    and (``department_mail``) one to each department's ``notify_email``. The caller commits.
    """
    settings: Settings = current_app.config["HCP_SETTINGS"]
    ids = []
    departments = list({d.id: d for d in departments}.values())
    for dept in departments:
        if dept.notify_webhook:
            ids.append(claim(session, f"{key}:webhook:{dept.id}", "webhook",
                             {"department_id": dept.id, "content": text}, case_id))
    if settings.smtp_host:
        mail = {f"u{u.id}": [u.email] for u in users if u.email}
        if department_mail:
            mail.update({f"d{d.id}": addresses(d.notify_email) for d in departments if d.notify_email})
        for suffix, to in mail.items():
            ids.append(claim(session, f"{key}:email:{suffix}", "email",
                             {"to": to, "subject": subject, "body": text}, case_id))
    return [i for i in ids if i is not None]


# -- delivering ------------------------------------------------------------------------

def deliver(session: Session, notification_id: int) -> str:
    """Send one delivery row: ``sent``, ``already`` (sent before or being sent), ``dropped``.

    Raises SendError after recording the attempt; the caller commits either way. On
    PostgreSQL the row stays locked while it is sent, so a redelivered task skips it.
    """
    row = session.scalar(select(Notification).where(Notification.id == notification_id)
                         .with_for_update(skip_locked=True))
    if row is None or row.sent_at is not None:
        return "already"
    send = SENDERS.get(row.kind)
    if send is None:
        row.last_error = f"no sender for {row.kind}"
        return "dropped"
    row.attempts = (row.attempts or 0) + 1
    try:
        send(row.payload or {}, current_app.config["HCP_SETTINGS"], session)
    except Undeliverable as err:
        row.last_error = str(err)[:500]
        return "dropped"
    except SendError as err:
        row.last_error = str(err)[:500]
        raise
    row.sent_at, row.last_error = utcnow(), None
    return "sent"


BATCH_SIZE = 200  # deliveries locked, sent and recorded in one transaction


@dataclass
class Batch:
    taken: int = 0  # rows locked and sent (or tried)
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # SendError: the caller retries these
    untried: list[int] = field(default_factory=list)  # the sender stopped before them: retried too
    dropped: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def deliver_batch(session: Session, kind: str, ids: list[int] | None = None, limit: int = BATCH_SIZE) -> Batch:
    """Send up to ``limit`` deliveries of ``kind`` through its batch sender, in one transaction:
    those of ``ids`` not sent yet, or (``ids`` None) the ones never tried, oldest first.

    Each row's attempt and outcome are recorded as ``deliver`` records them (``attempts``,
    ``last_error``, ``sent_at``); rows the sender gave no outcome (it stopped before them: the
    gateway is down) are left as they were, in ``untried``. The caller commits. On PostgreSQL the rows are locked
    ``SKIP LOCKED`` while they are sent: two batches at once, or a batch beside a single
    ``deliver``, never send one twice.
    """
    t = Notification.__table__.c
    stmt = select(t.id, t.payload).where(t.kind == kind, t.sent_at.is_(None))
    stmt = stmt.where(t.id.in_(ids) if ids is not None else t.attempts == 0)
    rows = session.execute(stmt.order_by(t.id).limit(limit).with_for_update(skip_locked=True)).all()
    done = Batch(taken=len(rows))
    if not rows:
        return done
    outcomes = BATCH_SENDERS[kind]([(r.id, r.payload or {}) for r in rows], current_app.config["HCP_SETTINGS"],
                                   session)
    errors = []
    for row in rows:
        if row.id not in outcomes:
            done.untried.append(row.id)
            continue
        outcome = outcomes[row.id]
        if outcome is None:
            done.sent.append(row.id)
            continue
        (done.failed if isinstance(outcome, SendError) else done.dropped).append(row.id)
        done.errors.append(str(outcome))
        errors.append({"row_id": row.id, "error": str(outcome)[:500]})
    if done.sent:
        session.execute(update(Notification.__table__).where(t.id.in_(done.sent))
                        .values(attempts=t.attempts + 1, sent_at=utcnow(), last_error=None))
    if errors:
        session.execute(update(Notification.__table__).where(t.id == bindparam("row_id"))
                        .values(attempts=t.attempts + 1, last_error=bindparam("error")), errors)
    return done


BATCH_WAIT = 1.0  # seconds a batched delivery waits for others to share its task


def batch_flag(kind: str) -> str:
    """The name ``send_batch`` tasks of ``kind`` are coalesced under (service.dispatch)."""
    return f"send_batch:{kind}"


def send_batched(kind: str, ids: list[int], **options) -> None:
    """After the commit that made deliveries ``ids`` of ``kind``: have them sent by a
    ``send_batch`` task within ``BATCH_WAIT`` seconds, one task for every delivery made
    meanwhile (it sends every delivery of ``kind`` never tried); without Redis, a task for
    these ``ids``. Raises when the broker is down: the deliveries stay never tried, for the
    next batch or the warning sweep (``never_tried``)."""
    from service import dispatch

    dispatch.send_coalesced(batch_flag(kind), "send_batch", kind, countdown=BATCH_WAIT,
                            fallback_args=(kind, ids), **options)


def never_tried(session: Session, older_than: timedelta, limit: int = 500) -> list[int]:
    """Deliveries not sent and never attempted, made before ``now - older_than``.

    Their task was lost between the issuing commit and the broker; the warning sweep
    sends them again. Deliveries that failed are Celery's to retry, not the sweep's.
    """
    stmt = (select(Notification.id)
            .where(Notification.sent_at.is_(None), Notification.attempts == 0,
                   Notification.kind.in_(tuple(SENDERS)),
                   Notification.created_at < utcnow() - older_than)
            .order_by(Notification.id).limit(limit))
    return list(session.scalars(stmt))


def robot_text(content: str) -> dict:
    """The group-robot "text" message; WeCom and DingTalk robots both take this shape."""
    return {"msgtype": "text", "text": {"content": content}}


@sender("webhook")
def send_webhook(payload: dict, settings: Settings, session: Session) -> None:
    """POST the robot JSON to the department's webhook; a non-zero ``errcode`` is a failure."""
    dept = session.get(Department, payload["department_id"])
    if not (dept and dept.notify_webhook):
        raise Undeliverable("the department has no notify_webhook any more")
    post_robot(dept, payload["content"], settings.notify_timeout)


def post_robot(dept: Department, content: str, timeout: float) -> dict | None:
    """POST ``content`` to the department's robot (signed when it has a 加签 secret) and
    return the robot's JSON answer (None for a plain 2xx); SendError when it refused."""
    url = dept.notify_webhook
    if dept.notify_webhook_secret_enc:
        url = signed_url(url, decrypt(dept.notify_webhook_secret_enc))
    body = json.dumps(robot_text(content), ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            answer = resp.read(65536)
    except (urllib.error.URLError, OSError) as err:  # HTTPError (4xx/5xx) is a URLError
        raise SendError(f"webhook {redact_url(url)}: {err}") from err
    try:
        data = json.loads(answer or b"{}")
    except ValueError:
        return None  # a plain 2xx from a relay that does not answer JSON
    # WeCom and DingTalk answer 200 with {"errcode": 45009, ...} when they refuse
    # (rate limit, bad key, keyword missing): that message did not go out.
    if isinstance(data, dict) and data.get("errcode", 0) not in (0, "0"):
        raise SendError(f"webhook {redact_url(url)}: errcode {data.get('errcode')} {data.get('errmsg', '')}")
    return data if isinstance(data, dict) else None


def signed_url(url: str, secret: str, now_ms: int | None = None) -> str:
    """The webhook URL with DingTalk's 加签 parameters: ``timestamp`` (ms) and ``sign``,
    the Base64 HMAC-SHA256 of ``"{timestamp}\n{secret}"`` keyed with the secret.

    DingTalk refuses a signature more than an hour old, so it is made at each post.
    """
    timestamp = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    query = urllib.parse.urlencode({"timestamp": timestamp, "sign": base64.b64encode(digest).decode()})
    return url + ("&" if "?" in url else "?") + query


def redact_url(url: str) -> str:
    """The URL without its query: robot keys live there and must not reach logs or screens."""
    base, sep, _ = url.partition("?")
    return base + ("?…" if sep else "")


@sender("email")
def send_email(payload: dict, settings: Settings, session: Session) -> None:
    """One plain-text UTF-8 mail over SMTP to ``payload['to']``."""
    if not settings.smtp_host:
        raise Undeliverable("HCP_SMTP_HOST is not set")
    msg = EmailMessage()
    msg["Subject"] = payload["subject"]
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(payload["to"])
    msg["Date"] = formatdate(localtime=True)
    msg.set_content(payload["body"])
    try:
        if settings.smtp_security == "ssl":
            smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port,
                                    timeout=settings.notify_timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.notify_timeout)
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as err:
        raise SendError(f"smtp {settings.smtp_host}:{settings.smtp_port}: {err}") from err
