"""Celery tasks. Thin: each opens one transaction and calls the domain functions."""
from __future__ import annotations

import logging
from datetime import date, timedelta

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from flask import current_app
from sqlalchemy.exc import DBAPIError

from models import Rating
from models.types import utcnow
from service import dispatch, notify
from service.cases import digest, routing, warnings
from service.devices import health
from models.clock import local_date
from service.cases.deadlines import WorkCalendar
from service.exchange import push as exchange_push
from service.extensions import db
from service.insights import counting
from service.invitations import sms  # noqa: F401 — registers the outbox's "sms" sender
from service.observability.jsonlog import request_id_var
from service.ratings import after_commit
from service.stats import floor
from service.suspicious import rules

log = logging.getLogger(__name__)


@shared_task(bind=True, autoretry_for=(DBAPIError,), retry_backoff=True, retry_backoff_max=60,
             max_retries=20, acks_late=True)
def route_rating(self, rating_id: int) -> int | None:
    """Create the case of a bad rating. Safe to run twice: the second finds the case."""
    case_id = routing.route(db.session, rating_id)
    if request_id_var.get() is None:  # resent by the sweep: use the id stored at intake
        rating = db.session.get(Rating, rating_id)  # already in the session, no query
        request_id_var.set(rating.request_id if rating is not None else None)
    db.session.commit()
    log.info("rating %s routed to case %s", rating_id, case_id)
    return case_id


@shared_task(bind=True, autoretry_for=(DBAPIError,), retry_backoff=True, retry_backoff_max=60,
             max_retries=20, acks_late=True)
def process_stored(self, count_ids: list[int], check_ids: list[int]) -> int:
    """One stored batch's term counts and suspicious rules, in one transaction. Safe to run twice."""
    flags = after_commit.process(db.session, count_ids, check_ids)
    db.session.commit()
    return flags


# Sent by web processes of the release before process_stored; kept so their queued messages run.
@shared_task(bind=True, autoretry_for=(DBAPIError,), retry_backoff=True, retry_backoff_max=60,
             max_retries=20, acks_late=True)
def count_terms(self, rating_ids: list[int]) -> int:
    """Count the terms of one stored batch (see process_stored)."""
    counted = counting.count(db.session, rating_ids)
    db.session.commit()
    return counted


@shared_task(bind=True, autoretry_for=(DBAPIError,), retry_backoff=True, retry_backoff_max=60,
             max_retries=20, acks_late=True)
def check_suspicious(self, rating_ids: list[int]) -> int:
    """Run the suspicious-rating rules on one stored batch (see process_stored)."""
    flags = rules.check(db.session, rating_ids)
    db.session.commit()
    return len(flags)


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


# Steps of the catch-up per run: a backlog larger than this goes on at the next run.
CATCH_UP_STEPS = 50


@shared_task
def catch_up_ratings() -> int:
    """Count the terms of, and run the rules on, stored ratings whose tasks never ran
    (service/ratings/after_commit.py ``catch_up``), one committed chunk at a time."""
    grace = timedelta(seconds=current_app.config["HCP_SETTINGS"].catch_up_grace_seconds)
    passed = 0
    for _ in range(CATCH_UP_STEPS):
        n, _counted, _checked = after_commit.catch_up(db.session, grace)
        db.session.commit()
        passed += n
        if n < after_commit.CHUNK:
            break
    return passed


def _today(today: str | None) -> date:
    """``today`` as given (ISO date, for re-runs and tests), else today in Asia/Shanghai."""
    return date.fromisoformat(today) if today else local_date(utcnow())


@shared_task
def sweep_warnings(today: str | None = None) -> int:
    """Send the red/yellow cards now due (SPEC §2, §9); the cards are computed, not stored."""
    issued = warnings.sweep(db.session, _today(today))
    db.session.commit()
    ids = [i for card in issued for i in card.delivery_ids]
    # Deliveries whose task never reached the broker (a crash right after an earlier commit).
    ids += notify.never_tried(db.session, timedelta(seconds=2 * current_app.config["HCP_SETTINGS"].warning_seconds))
    db.session.rollback()
    for notification_id in dict.fromkeys(ids):
        send_notification.delay(notification_id)
    if issued:
        log.info("warning sweep issued %d cards", len(issued))
    return len(issued)


@shared_task
def morning_digest(today: str | None = None) -> int:
    """Each handler's open cases by deadline, and the admins' 设备静默提醒 of silent devices,
    on working days of the Chinese calendar."""
    day = _today(today)
    if not WorkCalendar.load(db.session).is_workday(day):
        db.session.rollback()
        return 0
    sent = digest.issue_digests(db.session, day)
    silent = health.issue_silent_notice(db.session, day)  # kiosks gone quiet, noticed the same morning
    db.session.commit()
    for item in sent:
        for notification_id in item.delivery_ids:
            send_notification.delay(notification_id)
    for notification_id in silent:
        send_notification.delay(notification_id)
    return len(sent)


@shared_task(bind=True, autoretry_for=(notify.SendError, DBAPIError), retry_backoff=2,
             retry_backoff_max=600, retry_jitter=True, max_retries=10, acks_late=True)
def send_notification(self, notification_id: int) -> str:
    """Send one delivery; a failure is kept on the row and retried with backoff by Celery."""
    try:
        outcome = notify.deliver(db.session, notification_id)
    except notify.SendError as err:
        db.session.commit()  # keep attempts and last_error for the operator
        log.warning("notification %s not sent (attempt %d): %s", notification_id,
                    self.request.retries + 1, err)
        raise
    db.session.commit()
    return outcome
SEND_RETRIES = 10  # as send_notification's


@shared_task(bind=True, autoretry_for=(DBAPIError,), retry_backoff=True, retry_backoff_max=60,
             max_retries=20, acks_late=True)
def send_batch(self, kind: str, ids: list[int] | None = None) -> int:
    """Send deliveries of ``kind`` (the invitations' SMS) in batches of notify.BATCH_SIZE, one
    transaction each: every one never tried (sent by service.notify.send_batched), or those
    of ``ids`` not sent yet. The failed ones are retried together, with backoff and jitter as
    send_notification's; their attempts and errors are kept on the rows."""
    if ids is None:  # deliveries made from now on get a task of their own
        dispatch.coalesced_started(notify.batch_flag(kind))
    sent, again, errors = 0, [], []
    todo = ids
    while todo is None or todo:
        done = notify.deliver_batch(db.session, kind, None if todo is None else todo[:notify.BATCH_SIZE])
        db.session.commit()
        sent += len(done.sent)
        again += done.failed + done.untried
        errors += done.errors
        rest = None if todo is None else todo[notify.BATCH_SIZE:]
        if done.untried:  # the sender gave up (its gateway is down): the rest waits for the retry
            again += rest or []
            break
        if todo is None and done.taken < notify.BATCH_SIZE:
            break
        todo = rest
    if again:
        log.warning("%d %s deliveries not sent (attempt %d): %s", len(again), kind, self.request.retries + 1,
                    errors[-1] if errors else "not tried")
        raise self.retry(args=(kind, again), exc=notify.SendError(errors[-1] if errors else "not tried"),
                         countdown=get_exponential_backoff_interval(2, self.request.retries, 600, full_jitter=True),
                         max_retries=SEND_RETRIES)
    return sent


@shared_task
def check_satisfaction_floor() -> int:
    """Alert managers of departments whose monthly good rate is below HCP_SATISFACTION_FLOOR.

    Once per (department, month): the alert is a ``notifications`` row with a unique key.
    """
    alerts = floor.check(db.session)
    db.session.commit()
    floor.send_after_commit(alerts)
    return len(alerts)


@shared_task(bind=True, autoretry_for=(DBAPIError,), retry_backoff=True, retry_backoff_max=60,
             max_retries=5, acks_late=True)
def push_exchange(self) -> int:
    """上报: push the due outbox records in batches until none is due or the receiver fails."""
    done = exchange_push.push(db.session, current_app.config["HCP_SETTINGS"])
    if done.handled:
        log.info("exchange push: %d sent, %d rejected, %d held, %d to retry%s", done.sent, done.rejected,
                 done.held, done.failed, f" ({done.errors[-1]})" if done.errors else "")
    return done.sent


@shared_task
def make_default_ratings() -> int:
    """Invitations unused until they expired become default ratings (默认评价), in batches."""
    from service.invitations import defaults

    made = defaults.run(db.session)
    if made:
        log.info("made %d default ratings", made)
    return made
