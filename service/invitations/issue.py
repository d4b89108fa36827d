"""Making invitations when an application reaches a rated stage, and reading their state."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import STAGES, Invitation, Project, Rating, UnsettledInvitation, conflict
from models.types import utcnow
from service import notify, pending
from service.invitations import sms, tokens  # sms: also registers the outbox's sms sender

log = logging.getLogger(__name__)

def rated_stages() -> tuple[str, ...]:
    """HCP_RATED_STAGES, checked against the stages hcp knows."""
    stages = current_app.config["HCP_SETTINGS"].rated_stages
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"HCP_RATED_STAGES: unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}")
    return stages


def stage_time(stage: str, accepted_at: datetime | None, done_at: datetime | None) -> datetime | None:
    """When an application reached ``stage``."""
    return accepted_at if stage == "accepted" else done_at


def sms_key(invitation_id: int) -> str:
    """The outbox key of an invitation's SMS (its notification row): one SMS per invitation."""
    return f"invitation:{invitation_id}:sms"


# The same key in SQL, for statements that make the invitation and its SMS at once
# (service.projects.register); ``{id}`` is the SQL expression of the invitation's id.
SMS_KEY_SQL = "'invitation:' || CAST({id} AS VARCHAR) || ':sms'"


def planned(stage: str, accepted_at: datetime | None, done_at: datetime | None) -> list[dict]:
    """The invitations an application at ``stage`` with these times is owed: one per rated
    stage it has reached, each with a new nonce, its token's hash and its expiry."""
    days = current_app.config["HCP_SETTINGS"].default_rating_days
    rows, now = [], utcnow()
    for rated in rated_stages():
        at = stage_time(rated, accepted_at, done_at)
        if STAGES.index(rated) > STAGES.index(stage) or at is None:
            continue
        nonce = tokens.new_nonce()
        rows.append({"stage": rated, "nonce": nonce, "token_hash": tokens.token_hash(tokens.token_for(nonce)),
                     "stage_at": at, "expires_at": at + timedelta(days=days), "created_at": now})
    return rows


def ensure(session: Session, project: Project) -> list[int]:
    """One invitation per rated stage the application has reached (never two: a unique
    (project, stage) and ON CONFLICT DO NOTHING); the SMS deliveries to send, for the new
    ones whose applicant left a phone. The caller commits, then sends them."""
    deliveries = []
    for row in planned(project.stage, project.accepted_at, project.done_at):
        new_id = session.scalar(
            conflict.insert(session, Invitation).values(project_id=project.id, **row)
            .on_conflict_do_nothing(index_elements=["project_id", "stage"]).returning(Invitation.id))
        if new_id is not None:  # the default sweep's queue, until a first rating settles it
            session.execute(conflict.insert(session, UnsettledInvitation)
                            .values(expires_at=row["expires_at"], invitation_id=new_id, project_id=project.id))
        if new_id is not None and project.applicant_phone_enc:
            # The payload names the invitation only: the phone stays encrypted until the send.
            delivery = notify.claim(session, sms_key(new_id), sms.KIND, {"invitation_id": new_id})
            if delivery is not None:
                deliveries.append(delivery)
    return deliveries


def send_after_commit(delivery_ids: list[int]) -> None:
    """The SMS are sent in batches: this process's queue (service/pending.py) gathers the
    deliveries of HCP_AFTER_COMMIT_LINGER_SECONDS, then service.notify.send_batched has one
    task send every delivery made within a second (retried by Celery) — no broker or Redis
    call on the request's path. A broker that is down, or a process killed before its queue
    sent, leaves them to the next batch or the warning sweep, which resends deliveries never
    tried (service.notify.never_tried)."""
    if delivery_ids:
        pending.hand_on("hcp_pending_sms", _send_batched, delivery_ids,
                        what="SMS left for the next batch or the warning sweep")


def _send_batched(delivery_ids: list[int]) -> None:
    notify.send_batched(sms.KIND, delivery_ids, retry=False)


def state(session: Session, invitation: Invitation, now: datetime | None = None) -> str:
    """pending | rated | defaulted | expired."""
    first = session.execute(select(Rating.is_default).where(Rating.invitation_id == invitation.id,
                                                            Rating.assess_number == 1)).first()
    return state_of(None if first is None else first.is_default, invitation.expires_at, now)


def state_of(first_is_default: bool | None, expires_at: datetime, now: datetime | None = None) -> str:
    """The state of an invitation whose first rating is default (True), given (False) or none (None)."""
    if first_is_default is not None:
        return "defaulted" if first_is_default else "rated"
    return "expired" if (now or utcnow()) >= expires_at else "pending"


def latest(session: Session, project: Project) -> Invitation | None:
    """The invitation of the latest rated stage the application reached."""
    return session.scalar(select(Invitation).where(Invitation.project_id == project.id)
                          .order_by(Invitation.stage_at.desc(), Invitation.id.desc()).limit(1))


