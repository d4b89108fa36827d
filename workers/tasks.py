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
    """Send every bad rating still without a case (e.g. the broker was down at intake) again."""
    grace = timedelta(seconds=current_app.config["HCP_SETTINGS"].sweep_grace_seconds)
    ids = routing.unrouted(db.session, grace)
    db.session.rollback()
    for rating_id in ids:
        route_rating.delay(rating_id)
    if ids:
        log.warning("sweep resent %d unrouted bad ratings", len(ids))
    return len(ids)


@shared_task
def check_satisfaction_floor() -> int:
    """Alert managers of departments whose monthly good rate is below HCP_SATISFACTION_FLOOR.

    Once per (department, month): the alert is a ``notifications`` row with a unique key.
    """
    from service.stats import floor

    alerts = floor.check(db.session)
    db.session.commit()
    floor.send_after_commit(alerts)
    return len(alerts)
