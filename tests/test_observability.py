"""/metrics (Prometheus) and JSON logs whose request id follows a rating into its routing task."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.cases.warnings import Cards
from tests import support
from tests.support import bearer, rating_body


def scrape(client) -> dict:
    """``{(sample name, frozenset(labels)): value}`` from GET /metrics."""
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def kiosk(org):
    dept = org.department("m1", "政务服务中心")
    device, key = org.device(dept, channel="hall_tablet", window="7")
    return dept, device, key


def test_intake_counted_by_channel_and_outcome(client, kiosk):
    _, _, key = kiosk
    name = "hcp_ratings_received_total"
    before = scrape(client)
    body = rating_body(level=5)
    assert client.post("/api/v1/ratings", json=body, headers=bearer(key)).status_code == 201
    assert client.post("/api/v1/ratings", json=body, headers=bearer(key)).status_code == 200
    assert client.post("/api/v1/ratings", json={**body, "level": 1}, headers=bearer(key)).status_code == 409
    assert client.post("/api/v1/ratings", json={**rating_body(), "level": 7}, headers=bearer(key)).status_code == 422
    assert client.post("/api/v1/ratings", json=rating_body(), headers=bearer("hcpd_nope")).status_code == 401
    batch = [rating_body(level=4), rating_body(level=3), {"level": 1}]
    assert client.post("/api/v1/ratings/batch", json={"ratings": batch}, headers=bearer(key)).status_code == 200
    after = scrape(client)

    def delta(**labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert delta(channel="hall_tablet", outcome="created") == 3
    assert delta(channel="hall_tablet", outcome="duplicate") == 1
    assert delta(channel="hall_tablet", outcome="conflict") == 1
    assert delta(channel="hall_tablet", outcome="invalid") == 2
    assert delta(channel="unknown", outcome="unauthorized") == 1


def test_latency_histogram_per_endpoint(client, kiosk):
    _, _, key = kiosk
    before = scrape(client)
    client.post("/api/v1/ratings", json=rating_body(level=5), headers=bearer(key))
    after = scrape(client)
    labels = {"endpoint": "/api/v1/ratings", "method": "POST"}
    name = "hcp_http_request_duration_seconds"
    assert value(after, name + "_count", **labels) - value(before, name + "_count", **labels) == 1
    assert value(after, name + "_bucket", le="+Inf", **labels) == value(after, name + "_count", **labels)
    assert value(after, "hcp_http_requests_total", status="201", **labels) >= 1


def test_cases_by_state_and_overdue_counted_from_the_database(app, client, kiosk, org):
    dept, _, key = kiosk
    org.user("h1", "handler", dept)
    from models import Case
    from service.cases import routing
    from service.extensions import db

    rater = {"real_name": True, "name": "陈先生", "phone": "13812345678"}
    ids = [client.post("/api/v1/ratings", json=rating_body(level=1, rater=rater), headers=bearer(key)).get_json()["id"]
           for _ in range(4)]
    with app.app_context():
        cases = [db.session.get(Case, routing.route(db.session, rid)) for rid in ids]
        today = Cards.now(db.session).today
        long_ago = today - timedelta(days=60)
        cases[0].callback_due = cases[0].close_due = long_ago  # past its next deadline, the callback
        cases[1].status, cases[1].outcome = "closed", "rectified"
        cases[1].close_due = long_ago  # closed cases are never overdue
        cases[2].callback_due = today  # the callback's due day: yellow
        cases[3].status, cases[3].close_due = "rectifying", long_ago
        db.session.commit()
    samples = scrape(client)
    assert value(samples, "hcp_cases", state="assigned") == 2
    assert value(samples, "hcp_cases", state="closed") == 1
    assert value(samples, "hcp_cases", state="feedback") == 0
    assert value(samples, "hcp_cases_overdue", deadline="callback") == 1
    assert value(samples, "hcp_cases_overdue", deadline="close") == 1
    assert value(samples, "hcp_cases_warning", level="yellow") == 1
    assert value(samples, "hcp_cases_warning", level="red") == 2


def test_task_failure_counted(app, client):
    import workers.tasks  # noqa: F401 — registers the shared tasks (the web side sends them by name)

    task = app.extensions["celery"].tasks["workers.tasks.route_rating"]
    name = "hcp_task_failures_total"
    before = value(scrape(client), name, task=task.name)
    result = task.apply(args=("one", "too", "many"))  # raises TypeError inside the task
    assert result.failed()
    assert value(scrape(client), name, task=task.name) - before == 1


def test_request_id_follows_a_bad_rating_into_its_routing_task(app, client, kiosk, org, worker, query):
    dept, _, key = kiosk
    org.user("h1", "handler", dept)
    rid = "req-" + uuid.uuid4().hex
    resp = client.post("/api/v1/ratings", json=rating_body(level=1), headers={**bearer(key), "X-Request-ID": rid})
    assert resp.status_code == 201 and resp.headers["X-Request-ID"] == rid
    rating_id = resp.get_json()["id"]

    def routed_line():
        for line in worker.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if rid in line:
                entry = json.loads(line)  # every line is one JSON object
                if entry.get("message") == f"rating {rating_id} routed to case " + str(entry["message"].split()[-1]):
                    return entry
        return None
    entry = support.wait_for(routed_line, timeout=30, message="the routing log line with the request id")
    assert entry["request_id"] == rid and entry["level"] == "INFO"
    from models import Case
    from sqlalchemy import select
    case_id = query(lambda s: s.scalar(select(Case.id).where(Case.rating_id == rating_id)))
    assert entry["message"] == f"rating {rating_id} routed to case {case_id}"


def test_worker_serves_its_pool_processes_counters(app, hcp_env, tmp_path):
    """A prefork child's task failure shows on the worker's own metrics port."""
    import requests

    port = support.free_port()
    queue = hcp_env["HCP_INSTANCE"] + "-metrics"
    env = {**hcp_env, "HCP_VAR_DIR": str(tmp_path), "HCP_INSTANCE": queue,
           "HCP_WORKER_METRICS_PORT": str(port), "HCP_WORKER_METRICS_ADDR": "127.0.0.1"}
    proc = support.CeleryWorker(env, name="metrics", concurrency=2)
    proc.start()
    try:
        celery = app.extensions["celery"]
        celery.send_task("workers.tasks.route_rating", args=(1, 2, 3), queue=queue)  # TypeError in a child

        def failures():
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.RequestException:
                return None
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if s.name == "hcp_task_failures_total" and s.labels.get("task") == "workers.tasks.route_rating":
                        return s.value
            return None
        assert support.wait_for(failures, timeout=30, message="the failure on the worker's metrics port") == 1
    finally:
        proc.stop()
