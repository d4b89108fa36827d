"""Hall QR codes (扫码评价, SPEC §7): a window's fixed QR opens ``/q/{code}`` on a phone.

The page rates the window's service without an application: the rating is the qrcode
device's own (its department and window, channel ``qrcode``), with the same reasons and
comment rules as the invitation page (service/invitations/rate.py). One phone — the client
address and the page's cookie, kept only as a keyed hash — may rate one window at most
once per HCP_QR_MIN_MINUTES: the rule is an ``INSERT … ON CONFLICT DO UPDATE … WHERE``
on ``qr_voters`` in the transaction that stores the rating, so two taps at once let one
through, and a refused rating leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from datetime import datetime, timedelta
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Device, QrVoter, Rating, conflict
from models.types import utcnow
from service.invitations.rate import NotAllowed, check
from service.extensions import db
from service.ratings import after_commit, intake
from service.reasons import table as reasons

CODE_CHARS = 8
COOKIE = "hcp_qr"


class TooSoon(NotAllowed):
    """This phone rated this window less than HCP_QR_MIN_MINUTES ago."""

    def __init__(self, until: datetime):
        minutes = max(1, math.ceil((until - utcnow()).total_seconds() / 60))
        super().__init__(f"您刚刚已评价过本窗口，感谢您的参与。如需再次评价，请 {minutes} 分钟后再试。")
        self.until = until


def link(device: Device) -> str:
    """The address the window's printed QR opens."""
    return f"{current_app.config['HCP_SETTINGS'].public_url}/q/{device.qr_code}"


def find(session: Session, code: str) -> Device | None:
    """The active qrcode device of ``code``, or None."""
    if not code or len(code) > 16:
        return None
    return session.scalar(select(Device).where(Device.qr_code == code.lower(), Device.channel == "qrcode",
                                               Device.active.is_(True)))


def voter(address: str | None, cookie: str | None) -> str:
    """The keyed hash that stands for one phone: no address or cookie is stored as given."""
    key = hmac.new(current_app.config["SECRET_KEY"].encode(), b"hcp qr voter v1", hashlib.sha256).digest()
    return hmac.new(key, f"{address or '-'}|{cookie or ''}".encode(), hashlib.sha256).hexdigest()


def _gap() -> timedelta:
    return timedelta(minutes=current_app.config["HCP_SETTINGS"].qr_min_minutes)


def wait_until(session: Session, device: Device, who: str) -> datetime | None:
    """When ``who`` may rate ``device`` again, or None if now."""
    last = session.scalar(select(QrVoter.rated_at).where(QrVoter.device_id == device.id, QrVoter.voter == who))
    if last is None or last + _gap() <= utcnow():
        return None
    return last + _gap()


def _claim(conn, device_id: int, who: str, now: datetime) -> bool:
    """Record this rating's time for (device, voter) unless the last one is too recent."""
    voters = QrVoter.__table__
    stmt = conflict.insert(conn, voters).values(device_id=device_id, voter=who, rated_at=now).on_conflict_do_update(
        index_elements=["device_id", "voter"], set_={"rated_at": now},
        where=voters.c.rated_at <= now - _gap()).returning(voters.c.device_id)
    # A row comes back when inserted or moved forward, none when the last rating is too recent.
    return conn.execute(stmt).first() is not None


def submit(session: Session, device: Device, who: str, client_id: str, level: int | None, codes: list[str],
           comment: str, request_id: str | None = None) -> intake.Outcome | None:
    """Store one rating of the window; raises NotAllowed (TooSoon). Starts its tasks after commit.

    ``client_id`` comes from the form, so a second tap of one form is the rating already
    stored (None is returned), not a refusal.
    """
    check(level, codes, comment, reasons.offered(session))
    if session.scalar(select(Rating.id).where(Rating.client_id == client_id, Rating.device_id == device.id)):
        return None
    body = {"client_id": client_id, "level": level, "rated_at": utcnow()}
    for key, value in (("comment", comment.strip()), ("reasons", codes)):
        if value:
            body[key] = value
    device_ref = SimpleNamespace(id=device.id, department_id=device.department_id, channel=device.channel,
                                 window=device.window)
    # As rate.submit: another connection writes next (SQLite has one writer), and nothing
    # below touches the session's rows again (``device`` expires with this commit).
    session.commit()
    now = utcnow()
    # The app's engine, not the intake's autocommit one: the claim and the rating commit together.
    with db.engine.begin() as conn:
        if not _claim(conn, device_ref.id, who, now):
            last = conn.execute(select(QrVoter.rated_at).where(QrVoter.device_id == device_ref.id,
                                                               QrVoter.voter == who)).scalar()
            raise TooSoon((last or now) + _gap())
        outcome = intake.store(conn, device_ref, [body], request_id=request_id)[0]
    after_commit.send_tasks([outcome], [body], request_id)  # routing, term counts, suspicious rules
    return outcome
