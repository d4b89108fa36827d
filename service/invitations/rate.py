"""Rating through an invitation (一次一评 and 追评): what the page offers, and storing it.

The rating goes through the intake's ``store`` like any device's, as the department's
system device of the channel the link was opened from (sms, qrcode, mobile), so channel,
rollups and routing work as for every other rating. Its ``client_id`` is derived from the
invitation and the assessment number: a second submission is the same row (ON CONFLICT),
never a second rating.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models import Device, Invitation, Rating, UnsettledInvitation, is_bad
from models.types import utcnow
from service.auth.access import new_device_key
from service.pooling import intake_engine
from service.privacy import decrypt, key_digest
from service.ratings import intake
from service.ratings import after_commit
from service.reasons import table as reasons

# ?via= on the link → the rating's channel (SPEC §7).
VIA_CHANNELS = {"qr": "qrcode", "app": "mobile"}
DEFAULT_CHANNEL = "sms"
SYSTEM_NAMES = {"sms": "系统·短信邀请评价", "qrcode": "系统·回执二维码评价", "mobile": "系统·移动端邀请评价",
                "default": "系统·默认评价"}
MAX_COMMENT = 500


class NotAllowed(Exception):
    """The page cannot take this rating; ``message`` is Chinese, for the citizen."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass
class Standing:
    """Where an invitation stands for the page."""

    first: Rating | None
    followup: Rating | None
    expired: bool
    followup_until: datetime | None

    @property
    def may_rate(self) -> bool:
        return self.first is None and not self.expired

    @property
    def may_follow_up(self) -> bool:
        return (self.first is not None and not self.first.is_default and self.followup is None
                and self.followup_until is not None and utcnow() < self.followup_until)


def channel_of(via: str | None) -> str:
    return VIA_CHANNELS.get(via or "", DEFAULT_CHANNEL)


def standing(session: Session, invitation: Invitation) -> Standing:
    rows = {r.assess_number: r for r in session.scalars(
        select(Rating).where(Rating.invitation_id == invitation.id))}
    first = rows.get(1)
    days = current_app.config["HCP_SETTINGS"].followup_days
    until = first.rated_at + timedelta(days=days) if first is not None and not first.is_default else None
    return Standing(first, rows.get(2), utcnow() >= invitation.expires_at, until)


def system_device(session: Session, department_id: int, channel: str, name: str | None = None) -> Device:
    """The department's device for ratings hcp itself takes on ``channel`` (made once), by
    ``name`` (default SYSTEM_NAMES[channel]; the exchange names one per integration client).

    Disabled from birth, with a key nobody is given: it can never post through the API.
    """
    name = name or SYSTEM_NAMES[channel]
    device = session.scalar(select(Device).where(
        Device.department_id == department_id, Device.channel == channel,
        Device.name == name).order_by(Device.id).limit(1))
    if device is None:
        device = Device(name=name, department_id=department_id, channel=channel,
                        key_hash=key_digest(new_device_key()), active=False)
        session.add(device)
        session.flush()
    return device


def client_id(invitation_id: int, assess_number: int) -> str:
    """The ``client_id`` of an invitation's rating: the default-rating sweep makes the same
    one in SQL (service/invitations/defaults.py), so the unique client_id admits one first
    rating per invitation, whoever comes first."""
    return f"invitation-{invitation_id}-{assess_number}"


def check(level: int | None, codes: list[str], comment: str, offered: dict) -> None:
    """Raise NotAllowed naming what is wrong with the form (in Chinese)."""
    if level not in (1, 2, 3, 4, 5):
        raise NotAllowed("请选择满意程度。", "level")
    if len(comment) > MAX_COMMENT:
        raise NotAllowed(f"意见建议最多 {MAX_COMMENT} 字。", "comment")
    if reasons.problems(offered, level, codes):
        raise NotAllowed("所选原因与满意程度不符，请重新选择。", "reasons")
    if is_bad(level) and not codes and not comment.strip():
        raise NotAllowed("选择“不满意”或“非常不满意”时，请至少选择一项原因或填写意见。", "reasons")


def submit(session: Session, invitation: Invitation, via: str | None, level: int | None,
           codes: list[str], comment: str, request_id: str | None = None) -> intake.Outcome:
    """Store the first rating or the follow-up; raises NotAllowed. Routes a bad one after commit."""
    where = standing(session, invitation)
    if where.may_rate:
        assess, followup_of = 1, None
    elif where.may_follow_up:
        assess, followup_of = 2, where.first.id
    elif where.first is None:
        raise NotAllowed("评价已截止。")
    else:
        raise NotAllowed("您已评价过，感谢您的参与。")
    check(level, codes, comment, reasons.offered(session))

    project = invitation.project
    device = system_device(session, project.department_id, channel_of(via))
    name, phone = decrypt(project.applicant_name_enc), decrypt(project.applicant_phone_enc)
    body = {"client_id": client_id(invitation.id, assess), "level": level, "rated_at": utcnow(),
            "item_code": project.item.code, "project_no": project.project_no,
            "invitation_id": invitation.id, "assess_number": assess, "followup_of": followup_of}
    for key, value in (("staff_no", project.staff_no), ("comment", comment.strip()), ("reasons", codes)):
        if value:
            body[key] = value
    if name or phone:
        body["rater"] = {"real_name": True, **({"name": name[:50]} if name else {}),
                         **({"phone": phone} if phone else {})}
    device_ref = SimpleNamespace(id=device.id, department_id=device.department_id, channel=device.channel,
                                 window=device.window)
    queued = (UnsettledInvitation.expires_at == invitation.expires_at,
              UnsettledInvitation.invitation_id == invitation.id)
    # The session's transaction ends (and, on SQLite, its lock) before the intake's own
    # connection writes; nothing below touches the session's rows again.
    session.commit()
    with intake_engine().begin() as conn:
        outcome = intake.store(conn, device_ref, [body], request_id=request_id)[0]
        if outcome.status == "created" and assess == 1:  # settled: off the default sweep's queue
            conn.execute(delete(UnsettledInvitation).where(*queued))
    after_commit.send_tasks([outcome], [body], request_id)
    return outcome
