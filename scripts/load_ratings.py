#!/usr/bin/env python3
"""Load N synthetic ratings (and their cases) into a PostgreSQL database of its own, fast.

    .venv/bin/python scripts/load_ratings.py --database hcp_bench_figures --ratings 10000000

Creates (or recreates) the database, migrates it, adds a province-like tree (a district,
8 bureaus, 32 sections with items, hall devices and online channels, a manager and a
handler per section), then COPYs N ratings spread over the 365 days before today in
Asia/Shanghai (~3 % bad, 70 % of the bad ones real-name), makes one case per bad rating
in a realistic state (old ones mostly closed — rectified, explained or invalid, some
late — recent ones open), and rebuilds the stats rollups once. Triggers are off during
the load (``session_replication_role = replica``) and the rollups are counted afterwards,
which is what a bulk import must do too. Prints the manager's login.

``--drop`` removes the database again (what ``make bench-figures`` does at the end).
"""
from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")  # as bench/run.py
PASSWORD = "bench-pass-2024"
ONLINE = ("pc", "mobile", "qrcode", "sms", "hotline")  # default is the sweep's own channel
LEVELS = (5, 4, 3, 2, 1)
LEVEL_WEIGHTS = (85, 9, 3, 1.5, 1.5)  # 3 % bad


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def recreate(name: str) -> None:
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop(name: str) -> None:
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_app(name: str):
    os.environ["HCP_DATABASE_URL"] = f"{PG_URL}/{name}"
    os.environ.setdefault("HCP_VAR_DIR", tempfile.mkdtemp(prefix="hcp-bench-"))
    os.environ.setdefault("HCP_BROKER_URL", "memory://")
    from service import create_app
    return create_app()


def build_org(app) -> dict:
    """The department tree, items, devices and staff; returns what the COPY needs."""
    from flask_migrate import upgrade

    from service.org import add_department, add_device, add_item, add_user
    from service.extensions import db

    with app.app_context():
        upgrade()
        root = add_department("province", "示范省政务服务中心", None)
        add_user("bench-manager", PASSWORD, "manager", root, "省管理员")
        halls, items, online = [], [], []
        for b in range(8):
            bureau = add_department(f"bureau-{b}", f"第{b + 1}厅局", root)
            add_user(f"bench-sup-{b}", PASSWORD, "supervisor", bureau)
            for s in range(4):
                section = add_department(f"section-{b}-{s}", f"第{b + 1}厅局第{s + 1}处", bureau)
                add_user(f"bench-h-{b}-{s}", PASSWORD, "handler", section)
                sec_items = []
                for i in range(3):
                    sec_items.append(add_item(f"item-{b}-{s}-{i}", f"事项{b}-{s}-{i}", section))
                for ch, window in (("hall_terminal", f"{s * 2 + 1}"), ("hall_tablet", f"{s * 2 + 2}")):
                    device, _ = add_device(f"{section.code}-{ch}", section, ch, window, None)
                    halls.append((device, section, window, sec_items))
                items += sec_items
        for ch in ONLINE:
            device, _ = add_device(f"online-{ch}", root, ch, None, None)
            online.append((device, root))
        db.session.commit()
        return {
            "halls": [(d.id, sec.id, w, [(i.id, i.department_id) for i in its]) for d, sec, w, its in halls],
            "online": [(d.id, d.channel, dept.id) for d, dept in online],
            "items": [(i.id, i.department_id) for i in items],
            "channels": {d.id: d.channel for d, *_ in halls},
        }


def rating_templates(org: dict, rng: random.Random, size: int = 20_011,
                     weights: tuple = LEVEL_WEIGHTS) -> list[tuple[str, str, bool]]:
    """A pool of random rating rows without their id and time: drawing the dimensions per
    row costs more than the whole COPY, so rows cycle through the pool (prime-sized, so
    days do not repeat the same rows)."""
    halls, online, items, channels = org["halls"], org["online"], org["items"], org["channels"]
    pool = []
    for _ in range(size):
        level = rng.choices(LEVELS, weights)[0]
        bad = level <= 2
        real = rng.random() < (0.7 if bad else 0.2)
        if rng.random() < 0.6:
            device, dept, window, its = rng.choice(halls)
            channel = channels[device]
            item = rng.choice(its) if rng.random() < 0.7 else None
            staff = f"{dept}-{window}-{rng.randrange(1, 4)}"
        else:
            device, channel, dept = rng.choice(online)
            window, staff = None, None
            item = rng.choice(items) if rng.random() < 0.8 else None
        item_id, dept = item if item else (None, dept)
        null = "\\N"
        head = (f"{'0' * 64}\t{device}\t{dept}\t{item_id or null}\t{channel}\t{window or null}\t{level}\t"
                f"{'t' if bad else 'f'}")
        tail = f"{staff or null}\t{'t' if real else 'f'}\t{'陈*' if real else null}\t{'138******78' if real else null}"
        pool.append((head, tail, real))
    return pool


def phone_of(serial: int) -> str:
    """The synthetic phone number of the real-name rater of rating ``serial``."""
    return f"139{serial:08d}"


def project_no_of(serial: int) -> str:
    """The synthetic 办件编号 of rating ``serial``."""
    return f"BJ{serial:010d}"


def serial_of(client_id: str) -> int:
    return int(client_id[-12:], 16)


def rating_lines(org: dict, n: int, first: date, days: int, rng: random.Random, weights: tuple = LEVEL_WEIGHTS):
    """COPY text lines, in rated_at order (so every index of ratings grows at its end).

    Every rating has its own 办件编号; a real-name rater has their own phone, stored as
    its blind index (the loader stores no ciphertext), so case search is measured on
    realistic indexes. Needs an app context (the blind index is keyed by the app's secret).
    """
    from service.privacy import blind_index

    pool = rating_templates(org, rng, weights=weights)
    per_day, extra = divmod(n, days)
    serial = 0
    for d in range(days):
        day = first + timedelta(days=d)
        count = per_day + (1 if d < extra else 0)
        for j in range(count):
            serial += 1
            sec = 8 * 3600 + j * 12 * 3600 // count  # spread over 08:00–20:00 local
            head, tail, real = pool[serial % len(pool)]
            ts = f"{day} {sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}+08"
            index = blind_index(phone_of(serial)) if real else "\\N"
            yield (f"{serial:08x}-0000-4000-8000-{serial:012x}\t{head}\t{ts}\t{day}\t{ts}\t{tail}\t"
                   f"{project_no_of(serial)}\t{index}\n")


COLUMNS = ("client_id, body_hash, device_id, department_id, item_id, channel, \"window\", level, negative, "
           "rated_at, rated_date, received_at, staff_no, real_name, rater_name_masked, rater_phone_masked, "
           "project_no, rater_phone_index")

# One case per bad rating, in a state that depends on its age: closure is due 21 days on
# (about 15 working days); old cases are mostly closed, some of them late; recent ones open.
CASES_SQL = """
INSERT INTO cases (rating_id, department_id, assignee_id, status, outcome, callback_due, close_due,
                   created_at, updated_at, verified_at, closed_at, contacted, satisfied, claimed_by_id,
                   version)
SELECT r.id, r.department_id, h.id, s.status,
       CASE WHEN s.status = 'closed' THEN
            CASE WHEN x.u < 0.86 THEN 'rectified' WHEN x.u < 0.94 THEN 'explained' ELSE 'invalid' END
            WHEN s.status = 'feedback' THEN 'rectified' END,
       CASE WHEN r.real_name THEN r.rated_date + 1 END, r.rated_date + 21, r.received_at, r.received_at,
       CASE WHEN s.status NOT IN ('unassigned', 'assigned') THEN r.rated_at + interval '20 hours' END,
       CASE WHEN s.status = 'closed' THEN r.rated_at + (1 + x.w * 23) * interval '1 day' END,
       CASE WHEN s.status NOT IN ('unassigned', 'assigned') THEN r.real_name AND x.v < 0.93 END,
       CASE WHEN s.status = 'closed' AND x.u < 0.94 THEN
            CASE WHEN x.v < 0.9 THEN true WHEN x.v < 0.95 THEN false END END,
       NULL,
       1
FROM ratings r
-- the reference to r makes PostgreSQL draw new numbers for every row
CROSS JOIN LATERAL (SELECT random() AS u, random() AS v, random() AS w, random() AS z WHERE r.id IS NOT NULL) x
CROSS JOIN LATERAL (SELECT CASE
        WHEN %(today)s - r.rated_date > 30 THEN CASE WHEN x.z < 0.995 THEN 'closed' ELSE 'rectifying' END
        WHEN %(today)s - r.rated_date > 10 THEN CASE WHEN x.z < 0.6 THEN 'closed' WHEN x.z < 0.8 THEN 'feedback'
                                                     ELSE 'rectifying' END
        ELSE CASE WHEN x.z < 0.2 THEN 'closed' WHEN x.z < 0.5 THEN 'rectifying' ELSE 'assigned' END
      END AS status) s
LEFT JOIN LATERAL (SELECT u.id FROM users u WHERE u.department_id = r.department_id AND u.role = 'handler'
                   LIMIT 1) h ON true
WHERE r.negative
"""


ALL_BAD = (0, 0, 0, 50, 50)  # --all-bad: every rating a case (the case export's bench)


def load(name: str, n: int, seed: int, days: int = 365, weights: tuple = LEVEL_WEIGHTS) -> dict:
    from models.clock import local_date
    from models.types import utcnow

    recreate(name)
    app = make_app(name)
    org = build_org(app)
    today = local_date(utcnow())
    first = today - timedelta(days=days)
    rng = random.Random(seed)
    started = time.monotonic()
    with psycopg.connect(f"{PG_URL}/{name}") as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers: rollups are rebuilt below
        with conn.cursor().copy(f"COPY ratings ({COLUMNS}) FROM STDIN") as copy, app.app_context():
            buf = io.StringIO()
            for i, line in enumerate(rating_lines(org, n, first, days, rng, weights), 1):
                buf.write(line)
                if i % 50_000 == 0:
                    copy.write(buf.getvalue().encode())
                    buf = io.StringIO()
                if i % 1_000_000 == 0:
                    log(f"{i:,} ratings copied")
            copy.write(buf.getvalue().encode())
        log(f"{n:,} ratings copied in {time.monotonic() - started:.0f}s")
        conn.execute(CASES_SQL, {"today": today})
        conn.commit()
        log("cases made")
    with app.app_context():
        from service.extensions import db
        from service.stats import rollup

        t = time.monotonic()
        rollup.rebuild(db.session)
        db.session.commit()
        log(f"rollups rebuilt in {time.monotonic() - t:.0f}s")
    with psycopg.connect(f"{PG_URL}/{name}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    log(f"loaded in {time.monotonic() - started:.0f}s; manager login bench-manager / {PASSWORD}")
    return {"first": first, "last": today - timedelta(days=1), "app": app}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="hcp_bench_figures", help="database name (recreated)")
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drop", action="store_true", help="only drop the database and exit")
    parser.add_argument("--all-bad", action="store_true", help="every rating bad, so every rating has a case")
    args = parser.parse_args()
    if not args.database.startswith("hcp_bench"):
        parser.error("the database name must start with hcp_bench (it is dropped and recreated)")
    if args.drop:
        drop(args.database)
        log(f"dropped {args.database}")
        return
    load(args.database, args.ratings, args.seed, weights=ALL_BAD if args.all_bad else LEVEL_WEIGHTS)


if __name__ == "__main__":
    main()
