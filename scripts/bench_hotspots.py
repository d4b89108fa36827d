#!/usr/bin/env python3
"""Time the hot spots for a year of N synthetic ratings with comments, against a raw recount.

    .venv/bin/python scripts/bench_hotspots.py --ratings 1000000

Loads a database of its own (scripts/load_ratings.py), gives every third rating a comment
from a pool of hall comments, fills ``insight_terms`` (and its monthly grain) as the count task would have (each
pooled comment segmented once, its terms counted over the ratings carrying it in SQL), then
times ``GET /api/v1/insights/hotspots`` for the year (p50/p95, in-process client, warm)
against recounting the same terms from the raw rows (counting.recount: read the period's
comments, segment, add up — what the endpoint would do without daily counts), checks that
the two agree on every top term, and drops the database (``--keep`` keeps it).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load_ratings  # noqa: E402
from bench_figures import percentile  # noqa: E402

COMMENTS = [
    "不动产登记要跑两趟，材料不全", "营业执照一窗通办很方便", "排队时间太长，工作人员态度生硬", "自助终端系统故障",
    "办事指南写得清楚", "社保卡补办很快", "公积金提取手续复杂", "窗口工作人员很耐心", "网上办理总是失败",
    "最多跑一次落实得好", "叫号系统混乱", "企业开办一天办结", "户籍证明要重复提交", "居住证办理效率高",
    "停车难，等待时间长", "帮办代办服务贴心", "结婚登记预约不上", "养老保险转移太慢", "医保卡激活麻烦",
    "税务登记流程清楚",
]


def fill_terms(app, name: str) -> int:
    """Comments on every third rating; their term counts into insight_terms in SQL."""
    import psycopg

    from service.insights.segment import terms

    pairs = [(i, t) for i, c in enumerate(COMMENTS) for t in sorted(terms(c))]
    with psycopg.connect(f"{load_ratings.PG_URL}/{name}") as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE ratings SET comment = (%s::text[])[1 + (id / 3) %% %s] WHERE id %% 3 = 0",
                     (COMMENTS, len(COMMENTS)))
        conn.execute("CREATE TEMP TABLE pool_terms (idx int, term text)")
        with conn.cursor().copy("COPY pool_terms (idx, term) FROM STDIN") as copy:
            for pair in pairs:
                copy.write_row(pair)
        # In date order, as the count task writes them day by day: a GROUP BY's hash order would
        # scatter each day's rows over the whole table, which no live database does.
        conn.execute("""
            INSERT INTO insight_terms (rated_date, department_id, item_id, term, ratings, bad)
            SELECT r.rated_date, r.department_id, COALESCE(r.item_id, 0), p.term, count(*),
                   count(*) FILTER (WHERE r.negative)
            FROM ratings r JOIN pool_terms p ON p.idx = (r.id / 3) %% %s
            WHERE r.id %% 3 = 0 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""" % len(COMMENTS))
        conn.execute("INSERT INTO insight_terms_monthly (month, department_id, term, ratings, bad) "
                     "SELECT date_trunc('month', rated_date)::date, department_id, term, sum(ratings), sum(bad) "
                     "FROM insight_terms GROUP BY 1, 2, 3")
        conn.execute("INSERT INTO insight_counted (rating_id) SELECT id FROM ratings WHERE comment IS NOT NULL")
        rows = conn.execute("SELECT count(*) FROM insight_terms").fetchone()[0]
        conn.commit()
    with psycopg.connect(f"{load_ratings.PG_URL}/{name}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE insight_terms")
        conn.execute("VACUUM ANALYZE insight_terms_monthly")
    return rows


def raw_recount(app, first, last) -> Counter:
    """The period's term counts straight from the raw rows (read, segment, add up)."""
    from service.extensions import db
    from service.insights import counting

    out = Counter()
    with app.app_context():
        for _ids, counts in counting.recount(db.session, first, last):
            for key, (ratings, _bad) in counts.items():
                out[key[3]] += ratings
        db.session.rollback()
    return out


def reused(name: str):
    """The app on a database loaded before, migrated to head, and its year of ratings."""
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from models import Rating
    from service.extensions import db

    app = load_ratings.make_app(name)
    with app.app_context():
        upgrade()
        n, first, last = db.session.execute(select(func.count(), func.min(Rating.rated_date),
                                                   func.max(Rating.rated_date))).one()
        db.session.rollback()
    print(f"reusing {name}: {n:,} ratings, {first} .. {last}")
    return app, first, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="hcp_bench_hotspots")
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--raw-runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--save", help="write the last answer (JSON) to this file")
    parser.add_argument("--reuse", action="store_true",
                        help="measure a database loaded before (--keep), migrated to head first")
    args = parser.parse_args()
    if not args.database.startswith("hcp_bench"):
        parser.error("the database name must start with hcp_bench")
    try:
        if args.reuse:
            app, first, last = reused(args.database)
        else:
            loaded = load_ratings.load(args.database, args.ratings, seed=1)
            app, first, last = loaded["app"], loaded["first"], loaded["last"]
            t = time.monotonic()
            rows = fill_terms(app, args.database)
            print(f"{args.ratings:,} ratings, a comment on every third; insight_terms {rows:,} rows "
                  f"({time.monotonic() - t:.0f}s)")

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
        client.get("/api/v1/insights/hotspots", query_string=year, headers=headers)  # warm
        times, body = [], None
        for _ in range(args.runs):
            t = time.perf_counter()
            resp = client.get("/api/v1/insights/hotspots", query_string=year, headers=headers)
            times.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200, resp.get_json()
            body = resp.get_json()
        p95 = percentile(times, 95)
        print(f"hotspots, year (daily counts)   p50 {statistics.median(times):8.1f} ms   p95 {p95:8.1f} ms")
        if args.save:
            Path(args.save).write_text(json.dumps(body, ensure_ascii=False, sort_keys=True))
        if not args.raw_runs:  # e.g. a second measurement of a reused database
            print(f"raw recount not run (--raw-runs 0); {len(body['terms'])} top terms, "
                  f"{len(body['anomalies'])} anomalies")
            return
        raw_times, raw = [], None
        raw_recount(app, last, last)  # the tokenizer loaded before timing
        for _ in range(args.raw_runs):
            t = time.perf_counter()
            raw = raw_recount(app, first, last)
            raw_times.append((time.perf_counter() - t) * 1000)
        raw_p95 = percentile(raw_times, 95)
        print(f"hotspots, year (raw recount)    p50 {statistics.median(raw_times):8.1f} ms   p95 {raw_p95:8.1f} ms")
        print(f"ratio raw / daily counts p95: {raw_p95 / p95:.0f}x")
        wrong = {t["term"]: (t["count"], raw[t["term"]]) for t in body["terms"] if t["count"] != raw[t["term"]]}
        if wrong or not body["terms"]:
            print(f"exactness: top terms DIFFERENT from the raw recount: {wrong}")
            raise SystemExit(1)
        print(f"exactness: all {len(body['terms'])} top terms equal the raw recount; "
              f"{len(body['anomalies'])} anomalies")
    finally:
        if not args.keep:
            load_ratings.drop(args.database)
            print(f"dropped {args.database}")


if __name__ == "__main__":
    main()
