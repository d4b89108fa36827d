"""Celery tasks. Thin: each opens one transaction and calls the domain functions."""
from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import DBAPIError

from service.cases import routing
from service.extensions import db

log = logging.getLogger(__name__)


@shared_task(bind=True, autoretry_for=(DBAPIError,), retry_backoff=True, retry_backoff_max=60,
             max_retries=20, acks_late=True)
def route_rating(self, rating_id: int) -> int | None:
    """Create the case of a bad rating. Safe to run twice: the second finds the case."""
    case_id = routing.route(db.session, rating_id)
    db.session.commit()
    log.info("rating %s routed to case %s", rating_id, case_id)
    return case_id


@shared_task
def sweep_unrouted() -> int:
    """Send every bad rating still without a case (e.g. the broker was down at intake) again.

    Each resend is noted, and the next one waits twice as long (routing.note_resent), so a
    backlog that the workers are still working through is not enqueued again and again.
    """
    grace = timedelta(seconds=current_app.config["HCP_SETTINGS"].sweep_grace_seconds)
    ids = routing.unrouted(db.session, grace)
    db.session.rollback()
    sent = []
    try:
        for rating_id in ids:
            route_rating.delay(rating_id)
            sent.append(rating_id)
    finally:  # what was sent is noted even if the broker went away halfway
        routing.note_resent(db.session, sent, grace)
        db.session.commit()
    if sent:
        log.warning("sweep resent %d unrouted bad ratings", len(sent))
    return len(sent)
