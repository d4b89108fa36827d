#!/usr/bin/env python3
"""Measure the figures API on N synthetic ratings and prove it equals counting raw rows.

    .venv/bin/python scripts/bench_figures.py --ratings 10000000   # make bench-figures N=10000000

Loads a database of its own (scripts/load_ratings.py), then, through the Flask app with a
manager's bearer token, times ``GET /api/v1/stats/summary`` and
``GET /api/v1/stats/breakdown?by=department`` for the whole year (and a few other
shapes, for information), prints p50/p95, checks the summary against ``count(*)`` over
the raw rows, posts a batch of new ratings and takes case actions, checks again, and
drops the database (``--keep`` keeps it).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load_ratings  # noqa: E402

RAW_SQL = """
SELECT count(*) AS total, count(*) FILTER (WHERE r.level >= 3) AS good,
       count(*) FILTER (WHERE r.negative) AS bad,
       count(c.id) FILTER (WHERE c.status = 'closed') AS closed,
       count(c.id) FILTER (WHERE c.status = 'closed' AND c.outcome = 'rectified') AS closed_rectified,
       count(c.id) FILTER (WHERE c.status = 'closed' AND c.outcome = 'invalid') AS closed_invalid,
       count(c.id) FILTER (WHERE c.status = 'closed' AND c.outcome = 'explained') AS closed_explained,
       count(c.id) FILTER (WHERE c.status <> 'closed') AS open,
       count(c.id) FILTER (WHERE c.contacted AND r.real_name) AS called_back,
       count(c.id) FILTER (WHERE c.satisfied) AS satisfied_yes
FROM ratings r LEFT JOIN cases c ON c.rating_id = r.id
WHERE r.rated_date BETWEEN %(first)s AND %(last)s
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(client, headers, path: str, params: dict, runs: int) -> tuple[list[float], dict]:
    client.get(path, query_string=params, headers=headers)  # warm
    times, body = [], None
    for _ in range(runs):
        t = time.perf_counter()
        resp = client.get(path, query_string=params, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
    return times, body


def raw_counts(name: str, first, last) -> dict:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(f"{load_ratings.PG_URL}/{name}", row_factory=dict_row) as conn:
        return conn.execute(RAW_SQL, {"first": first, "last": last}).fetchone()


def check_equal(name: str, first, last, summary: dict, when: str) -> None:
    raw = raw_counts(name, first, last)
    got = {k: summary[k] for k in raw}
    status = "equal" if got == raw else "DIFFERENT"
    print(f"exactness {when}: summary {status} to count(*) over raw rows: {raw}")
    if got != raw:
        print(f"  summary said: {got}")
        raise SystemExit(1)


def search_samples(name: str, n: int) -> tuple[list[str], list[str]]:
    """Phones and 办件编号 of ``n`` random real-name cases (the loader's synthetic values)."""
    import psycopg

    with psycopg.connect(f"{load_ratings.PG_URL}/{name}") as conn:
        rows = conn.execute("SELECT r.client_id FROM cases c TABLESAMPLE SYSTEM (5) "
                            "JOIN ratings r ON r.id = c.rating_id WHERE r.real_name LIMIT %(n)s", {"n": n}).fetchall()
    serials = [load_ratings.serial_of(r[0]) for r in rows]
    return [load_ratings.phone_of(s) for s in serials], [load_ratings.project_no_of(s) for s in serials]


REPORT_RUNS = 3  # each report draws two charts and writes a PDF: seconds, not milliseconds


def time_search(client, headers, queries: list[str]) -> list[float]:
    """``GET /api/v1/cases?q=`` once per query (warm), each expected to find its one case."""
    client.get("/api/v1/cases", query_string={"q": queries[0]}, headers=headers)
    times = []
    for q in queries:
        t = time.perf_counter()
        resp = client.get("/api/v1/cases", query_string={"q": q}, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200 and resp.get_json()["total"] == 1, (q, resp.get_json())
    return times


def add_ratings_and_actions(app, n: int) -> None:
    """New ratings through intake (triggers on) and a few case actions, like production."""
    from sqlalchemy import select

    from models import Case, Device, User
    from service.cases.routing import route
    from service.cases.workflow import apply
    from service.extensions import db
    from service.ratings.intake import store

    with app.app_context():
        device = db.session.scalar(select(Device).where(Device.channel == "hall_terminal"))
        now = datetime.now(timezone.utc) - timedelta(days=1)
        bodies = [{"client_id": uuid.uuid4(), "level": 1 if i % 5 == 0 else 5, "rated_at": now} for i in range(n)]
        outcomes = store(db.session.connection(), device, bodies)
        db.session.commit()
        for o in outcomes:
            if o.rating["negative"]:
                route(db.session, o.rating["id"])
        db.session.commit()
        handler = db.session.scalar(select(User).where(User.department_id == device.department_id,
                                                       User.role == "handler"))
        for case in db.session.scalars(select(Case).where(Case.status == "assigned",
                                                          Case.assignee_id == handler.id).limit(20)):
            apply(db.session, case, handler, "verify", {"contacted": True})
            apply(db.session, case, handler, "rectify", {"measures": {"cause": "c", "action": "a"}})
            apply(db.session, case, handler, "feedback", {"contacted": True, "satisfied": True})
        db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="hcp_bench_figures")
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure an already loaded database")
    args = parser.parse_args()
    if not args.database.startswith("hcp_bench"):
        parser.error("the database name must start with hcp_bench")
    try:
        if args.reuse:
            from models.types import utcnow
            from models.clock import local_date
            app = load_ratings.make_app(args.database)
            last = local_date(utcnow()) - timedelta(days=1)
            first = last - timedelta(days=364)
        else:
            loaded = load_ratings.load(args.database, args.ratings, seed=1)
            app, first, last = loaded["app"], loaded["first"], loaded["last"]

        from sqlalchemy import select

        from models import User
        from service.auth.access import issue_token
        from service.extensions import db

        with app.app_context():
            token, _ = issue_token(db.session.scalar(select(User).where(User.username == "bench-manager")))
            db.session.commit()
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        year = {"from": first.isoformat(), "to": last.isoformat()}
        shapes = [
            ("summary, year", "/api/v1/stats/summary", year, True),
            ("breakdown by department, year", "/api/v1/stats/breakdown", {**year, "by": "department"}, True),
            ("breakdown by month, year", "/api/v1/stats/breakdown", {**year, "by": "month"}, False),
            ("summary, year, one bureau", "/api/v1/stats/summary", {**year, "department": "bureau-3"}, False),
            ("summary, year, one item", "/api/v1/stats/summary", {**year, "item": "item-2-1-0"}, False),
            ("breakdown by staff, year", "/api/v1/stats/breakdown", {**year, "by": "staff"}, False),
        ]
        print(f"period {first} .. {last}; {args.runs} timed runs each (in-process Flask client, warm)")
        summary = None
        for label, path, params, required in shapes:
            times, body = timed(client, headers, path, params, args.runs)
            print(f"{label:34s} p50 {statistics.median(times):7.1f} ms   p95 {percentile(times, 95):7.1f} ms"
                  f"{'   (target p95 < 300 ms)' if required else ''}")
            if label == "summary, year":
                summary = body
        print(f"year summary: total {summary['total']:,}, good {summary['good']:,}, bad {summary['bad']:,}, "
              f"disposal {summary['disposal_rate']}, rectification {summary['rectification_rate']}")
        check_equal(args.database, first, last, summary, "after load")
        phones, numbers = search_samples(args.database, args.runs)
        for label, queries in (("case search by phone", phones), ("case search by 办件编号", numbers)):
            times = time_search(client, headers, queries)
            print(f"{label:34s} p50 {statistics.median(times):7.1f} ms   p95 {percentile(times, 95):7.1f} ms"
                  f"   (target p95 < 100 ms)")
        report_times = []
        for _ in range(REPORT_RUNS):  # the whole work summary: figures, tables, hot spots, charts, PDF
            t = time.perf_counter()
            resp = client.get("/api/v1/reports", query_string={**year, "format": "pdf"}, headers=headers)
            report_times.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200 and resp.data.startswith(b"%PDF"), resp.status_code
        print(f"{'yearly report, pdf':34s} p50 {statistics.median(report_times):7.1f} ms   "
              f"p95 {percentile(report_times, 95):7.1f} ms   (target < 30000 ms)")
        add_ratings_and_actions(app, 500)
        after = client.get("/api/v1/stats/summary", query_string=year, headers=headers).get_json()
        assert after["total"] == summary["total"] + 500, (after["total"], summary["total"])
        check_equal(args.database, first, last, after, "after 500 new ratings and case actions")
    finally:
        if not args.keep:
            load_ratings.drop(args.database)
            print(f"dropped {args.database}")


if __name__ == "__main__":
    main()
