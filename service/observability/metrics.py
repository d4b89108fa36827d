"""Prometheus metrics: ``GET /metrics`` for the web process, an optional port for workers.

Counters and histograms are kept per process. Under gunicorn and Celery's prefork pool a
machine runs several processes, so ``PROMETHEUS_MULTIPROC_DIR`` (set by config/gunicorn.py
and workers/entry.py) makes each process write its values to files there, and a scrape
adds them up. Case gauges are not kept at all: they are counted from the database at
scrape time, with two index-backed queries, so every web machine reports the same truth.
"""
from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

blp = Blueprint("metrics", __name__)

INTAKE = Counter("hcp_ratings_received", "Ratings submitted, by the device's channel and what became of them",
                 ["channel", "outcome"])
HTTP_REQUESTS = Counter("hcp_http_requests", "HTTP requests served", ["endpoint", "method", "status"])
HTTP_LATENCY = Histogram("hcp_http_request_duration_seconds", "Time to answer an HTTP request",
                         ["endpoint", "method"],
                         buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
ROUTING_DELAY = Histogram("hcp_routing_delay_seconds", "From a bad rating's receipt to its case being created",
                          buckets=(.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600))
TASK_FAILURES = Counter("hcp_task_failures", "Celery tasks that raised (after their retries)", ["task"])
TASK_RETRIES = Counter("hcp_task_retries", "Celery task retries", ["task"])

INTAKE_ENDPOINTS = {"ratings.Ratings", "ratings.Batch"}
# Labels come from fixed sets only (SPEC §11): a client choosing the method or the path
# must not be able to add series. Any other method is "other"; a path no route matches
# is "unmatched"; a route is its rule (``/api/v1/cases/<int:case_id>``), never the path.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# What a single-rating answer means when the view never saw the body (auth, schema, limits).
STATUS_OUTCOME = {200: "duplicate", 201: "created", 401: "unauthorized", 409: "conflict",
                  422: "invalid", 429: "rate_limited", 503: "unavailable"}


def init_app(app: Flask) -> None:
    app.register_blueprint(blp)
    app.before_request(_start_timer)
    app.after_request(_observe)


def _start_timer():
    g.metrics_started = time.perf_counter()


# Each (route, method, status)'s series, once looked up: ``labels()`` checks and converts
# the values and takes a lock on every call.
_SERIES: dict[tuple, tuple] = {}


def _series(endpoint: str, method: str, status: int) -> tuple:
    found = _SERIES.get((endpoint, method, status))
    if found is None:  # bounded: routes × METHODS × the statuses hcp answers
        found = _SERIES[(endpoint, method, status)] = (HTTP_LATENCY.labels(endpoint, method),
                                                       HTTP_REQUESTS.labels(endpoint, method, str(status)))
    return found


def _observe(response):
    endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
    method = request.method if request.method in METHODS else "other"
    latency, requests = _series(endpoint, method, response.status_code)
    started = g.get("metrics_started")
    if started is not None:
        latency.observe(time.perf_counter() - started)
    requests.inc()
    if request.endpoint in INTAKE_ENDPOINTS:
        _count_intake(response.status_code)
    return response


def _count_intake(status: int) -> None:
    device = g.get("device")  # set once the key was accepted (a plain row, never expired)
    channel = device.channel if device is not None else "unknown"
    outcomes = g.get("intake_outcomes")
    if outcomes is None:  # refused before storing: count the answer
        INTAKE.labels(channel, STATUS_OUTCOME.get(status, str(status))).inc()
        return
    tally: dict[str, int] = {}
    for outcome in outcomes:
        tally[outcome.status] = tally.get(outcome.status, 0) + 1
    for outcome, n in tally.items():
        INTAKE.labels(channel, outcome).inc(n)


class CaseGauges:
    """Cases by state and open cases past their deadlines, counted when scraped."""

    def __init__(self, app: Flask):
        self.app = app

    def describe(self):
        return []  # counted at scrape time only; nothing to check at registration

    def collect(self):
        from sqlalchemy import func, select, text

        from models import OPEN_STATUSES, STATUS_LABELS, Case
        from service.cases.warnings import Cards, next_deadline_sql
        from service.extensions import db

        with self.app.app_context():
            by_state = dict(db.session.execute(select(Case.status, func.count()).group_by(Case.status)).all())
            cards = Cards.now(db.session)
            late = dict(db.session.execute(
                select(next_deadline_sql(), func.count()).where(cards.where("red")).group_by(text("1"))).all())
            warnings = {level: db.session.scalar(select(func.count()).select_from(Case).where(
                Case.status.in_(OPEN_STATUSES), cards.where(level))) for level in ("yellow", "red")}
            db.session.rollback()
        callback_late, close_late = late.get("callback", 0), late.get("close", 0)
        states = GaugeMetricFamily("hcp_cases", "Cases by state", labels=["state"])
        for state in STATUS_LABELS:
            states.add_metric([state], by_state.get(state, 0))
        yield states
        overdue = GaugeMetricFamily("hcp_cases_overdue", "Open cases past a deadline", labels=["deadline"])
        overdue.add_metric(["callback"], callback_late or 0)
        overdue.add_metric(["close"], close_late or 0)
        yield overdue
        cards = GaugeMetricFamily("hcp_cases_warning", "Open cases carrying a yellow or red card", labels=["level"])
        for level in ("yellow", "red"):
            cards.add_metric([level], warnings.get(level, 0))
        yield cards


class _Delegate:
    """Exposes the process's default registry inside a per-scrape registry."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """This machine's counters: all processes' files in multiprocess mode, else this process."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Delegate(REGISTRY))
    return registry


@blp.get("/metrics")
def metrics():
    from flask import current_app

    registry = process_registry()
    registry.register(CaseGauges(current_app._get_current_object()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def serve_worker_metrics(port: int, addr: str = "0.0.0.0") -> None:
    """A Celery worker has no web server: serve its machine's counters on ``port``."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=process_registry())
