"""Making invitations when an application reaches a rated stage, and reading their state."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import STAGES, Invitation, Project, Rating
from models.types import utcnow
from service import dispatch, notify
from service.invitations import sms, tokens  # noqa: F401 — sms: the outbox's "sms" sender

log = logging.getLogger(__name__)

def rated_stages() -> tuple[str, ...]:
    """HCP_RATED_STAGES, checked against the stages hcp knows."""
    stages = current_app.config["HCP_SETTINGS"].rated_stages
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"HCP_RATED_STAGES: unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}")
    return stages


def stage_time(project: Project, stage: str) -> datetime | None:
    return project.accepted_at if stage == "accepted" else project.done_at


def ensure(session: Session, project: Project) -> list[int]:
    """One invitation per rated stage the application has reached (never two: a unique
    (project, stage) and ON CONFLICT DO NOTHING); the SMS deliveries to send, for the new
    ones whose applicant left a phone. The caller commits, then sends them."""
    settings = current_app.config["HCP_SETTINGS"]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    deliveries = []
    for stage in rated_stages():
        at = stage_time(project, stage)
        if STAGES.index(stage) > project.stage_rank or at is None:
            continue
        nonce = tokens.new_nonce()
        new_id = session.scalar(
            insert(Invitation).values(
                project_id=project.id, stage=stage, nonce=nonce, token_hash=tokens.token_hash(tokens.token_for(nonce)),
                stage_at=at, expires_at=at + timedelta(days=settings.default_rating_days), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["project_id", "stage"]).returning(Invitation.id))
        if new_id is not None and project.applicant_phone_enc:
            # The payload names the invitation only: the phone stays encrypted until the send.
            delivery = notify.claim(session, f"invitation:{new_id}:sms", "sms", {"invitation_id": new_id})
            if delivery is not None:
                deliveries.append(delivery)
    return deliveries


def send_after_commit(delivery_ids: list[int]) -> None:
    """One send task per SMS (retried by Celery); a broker that is down leaves them to the
    warning sweep, which resends deliveries never tried (service.notify.never_tried)."""
    for delivery_id in delivery_ids:
        try:
            dispatch.send("send_notification", delivery_id, retry=False)
        except Exception:  # noqa: BLE001 — the invitation is stored; the sweep sends it
            log.warning("broker unavailable; SMS %s left for the sweep", delivery_id)


def state(session: Session, invitation: Invitation, now: datetime | None = None) -> str:
    """pending | rated | defaulted | expired."""
    first = session.execute(select(Rating.is_default).where(Rating.invitation_id == invitation.id,
                                                            Rating.assess_number == 1)).first()
    if first is not None:
        return "defaulted" if first.is_default else "rated"
    return "expired" if (now or utcnow()) >= invitation.expires_at else "pending"


def latest(session: Session, project: Project) -> Invitation | None:
    """The invitation of the latest rated stage the application reached."""
    return session.scalar(select(Invitation).where(Invitation.project_id == project.id)
                          .order_by(Invitation.stage_at.desc(), Invitation.id.desc()).limit(1))


