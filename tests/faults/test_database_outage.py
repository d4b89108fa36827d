"""PostgreSQL stopped and started under a stream of ratings, hcp left running.

The database of this test is a PostgreSQL cluster of its own (initdb into a temp dir),
never the system one. While it is down the intake must answer 503 with Retry-After —
never a 500, never a request hanging past a bound — and store nothing half-way; when it
is back, the same web and worker processes (same pids: hcp is not restarted) take
ratings again and route every bad one to exactly one case. Kiosks retry on 503 with the
same body, so every rating ends stored exactly once.
"""
from __future__ import annotations

import requests

from tests import support
from tests.faults import figures, load
from tests.stack import PostgresServer, children, wait_quiet

RATINGS = 3000
DOWN_SECONDS = 10
HANG = 15  # seconds: an answer slower than this counts as a hang


def gunicorn_pids(stack) -> set[int]:
    return {stack.web.proc.pid, *children(stack.web.proc.pid)}


def test_database_down_answers_503_and_recovers_without_restart(redis, stack_factory):
    pg = PostgresServer()
    pg.init()
    pg.start()
    try:
        run(pg, redis, stack_factory)
    finally:
        pg.destroy()


def run(pg, redis, stack_factory):
    stack = stack_factory(redis, database_url=pg.create_database("hcp"))
    app, key, _ = stack.hall()
    stack.start_web(workers=2, threads=8)
    worker = stack.start_worker("w1", concurrency=2)
    stack.start_beat()
    web_pids, worker_pid = gunicorn_pids(stack), worker.proc.pid

    items = load.bodies(RATINGS, bad_every=10, real_name_every=7)
    progress = [0]
    tally = load.Tally()
    sender = load.start(load.stream, stack.web.url, key, items, clients=8, per_second=100,
                        timeout=HANG, tally=tally, progress=progress)
    probes = []
    for mode in ("fast", "immediate"):  # a clean shutdown, then a crash
        support.wait_for(lambda: progress[0] >= RATINGS * (0.2 if mode == "fast" else 0.6),
                         timeout=300, message="the stream to get going")
        pg.stop(mode)
        support.wait_for(lambda: tally.retries[503] > 0, timeout=HANG, message="the intake to answer 503")
        probe = requests.post(stack.web.url + "/api/v1/ratings", json=support.rating_body(level=1),
                              headers=support.bearer(key), timeout=HANG)
        probes.append((probe.status_code, probe.headers.get("Retry-After"), probe.json().get("message")))
        wait_quiet(DOWN_SECONDS)
        pg.start()

    sender.join(timeout=600)
    assert not sender.is_alive(), "the stream did not finish"
    support.wait_for(lambda: (lambda b, r: b == r)(*figures.bad_routed(app)), timeout=120,
                     message="every bad rating to have its case")
    figs = figures.count(app, [b["client_id"] for b in items])
    figures.report("database_outage", figs, answered=tally.answered(), answered_503=tally.retries[503],
                   connection_errors=tally.retries["connection"], unexpected=len(tally.unexpected),
                   hangs=tally.hangs, latency=tally.latency())
    print("probes while down:", probes)

    assert all(status == 503 and retry and int(retry) > 0 for status, retry, _ in probes), probes
    assert tally.retries[503] > 0
    # No 500, no hang, Retry-After on every 503.
    assert tally.unexpected == [] and tally.hangs == 0, tally.unexpected[:10]
    assert tally.answered() == RATINGS
    figures.assert_nothing_lost(figs)
    # The errors logged during the outage carry no rater data (SQL parameters are hidden).
    logs = stack.logs()
    assert "database unavailable" in logs
    assert not [b for b in items if "rater" in b and (b["rater"]["phone"] in logs or b["rater"]["name"] in logs)]
    # hcp was not restarted: the same gunicorn master and workers, the same Celery worker.
    assert gunicorn_pids(stack) == web_pids and worker.proc.pid == worker_pid and worker.proc.poll() is None
