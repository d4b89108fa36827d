"""The 一事一评 rows of ``make bench`` (SPEC §7), each a ratio measured in the same run.

- **default ratings**: ``BENCH_DEFAULT_INVITATIONS`` (default 200,000) due invitations in a
  database of their own, turned into default ratings by the task itself
  (``service.invitations.defaults.run``: batches, ON CONFLICT, the invitations taken off the
  sweep's queue, their 上报 records) against one bare ``INSERT … SELECT`` of the same
  rows into ``ratings`` (rolled back), in the same database, same run. Both fire the rollup
  triggers. Target ≤ 2× the bare insert's time.
- **PUT /projects**: wrk PUTting new applications (stage done: an invitation and its SMS
  each) with the approval client's key, against bench/baseline.py's bare INSERT, alternate
  rounds, best kept as for the intake. Target ≥ 0.5×.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")

# The rows the default task makes, as one bare statement: no batches, no conflict handling.
BARE_INSERT = """
INSERT INTO ratings (client_id, body_hash, device_id, department_id, item_id, channel, "window", level,
                     negative, rated_at, rated_date, received_at, project_no, staff_no, real_name,
                     invitation_id, assess_number, is_default)
SELECT 'bare-' || i.id, 'default', %(device_id)s, p.department_id, p.item_id, 'default', NULL, 5, false,
       i.expires_at, (i.expires_at AT TIME ZONE 'Asia/Shanghai')::date, now(), p.project_no, p.staff_no, false,
       i.id, 1, true
FROM invitations i JOIN projects p ON p.id = i.project_id
"""

LOAD_PROJECTS = """
INSERT INTO projects (project_no, item_id, department_id, stage, accepted_at, done_at, staff_no, applicant_kind,
                      created_at, updated_at)
SELECT 'BD' || lpad(g::text, 10, '0'), %(item_id)s, %(department_id)s, 'done', now() - interval '9 days',
       now() - interval '8 days', 'A' || (g %% 40), 'person', now() - interval '8 days', now() - interval '8 days'
FROM generate_series(1, %(n)s) g
"""
LOAD_INVITATIONS = """
INSERT INTO invitations (project_id, stage, nonce, token_hash, stage_at, expires_at, created_at)
SELECT p.id, 'done', md5(p.id::text), md5(p.id::text) || md5('t' || p.id::text), p.done_at,
       p.done_at + interval '7 days', p.done_at
FROM projects p
"""
LOAD_UNSETTLED = """
INSERT INTO invitations_unsettled (expires_at, invitation_id, project_id)
SELECT expires_at, id, project_id FROM invitations
"""

SETUP = """
import json
from service import create_app
from service.org import add_department, add_item
from service.invitations.rate import system_device
from service.extensions import db
app = create_app()
with app.app_context():
    d = add_department('bench-defaults', '默认评价压测', None)
    item = add_item('bench-item', '压测事项', d)
    db.session.flush()
    device = system_device(db.session, d.id, 'default')
    db.session.commit()
    print(json.dumps({'department_id': d.id, 'item_id': item.id, 'device_id': device.id}))
"""

RUN_DEFAULTS = """
import time
from service import create_app
from service.extensions import db
from service.invitations import defaults
app = create_app()
with app.app_context():
    db.session.execute(db.text('SELECT 1'))
    started = time.perf_counter()
    made = defaults.run(db.session)
    print(f'DEFAULTS {made} {time.perf_counter() - started:.3f}')
"""


def _python(code: str, env: dict) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def default_ratings(n: int, base_env: dict) -> dict:
    """Seconds of the default task and of the bare INSERT … SELECT over ``n`` due invitations."""
    name = f"hcp_bench_defaults_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{PG_URL}/{name}"
    env = {**base_env, "HCP_DATABASE_URL": dsn, "HCP_LOG_LEVEL": "WARNING"}
    try:
        subprocess.run([str(Path(sys.executable).parent / "hcp"), "db", "upgrade"], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        org = json.loads(_python(SETUP, env).strip().splitlines()[-1])
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(LOAD_PROJECTS, {**org, "n": n})
            conn.execute(LOAD_INVITATIONS)
            conn.execute(LOAD_UNSETTLED)
            conn.execute("VACUUM ANALYZE")
        with psycopg.connect(dsn) as conn:  # the bare statement, timed, then undone
            started = time.perf_counter()
            bare_rows = conn.execute(BARE_INSERT, org).rowcount
            bare = time.perf_counter() - started
            conn.rollback()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        match = re.search(r"DEFAULTS (\d+) ([\d.]+)", _python(RUN_DEFAULTS, env))
        made, task = int(match.group(1)), float(match.group(2))
        with psycopg.connect(dsn) as conn:
            stored = conn.execute("SELECT count(*) FROM ratings WHERE is_default").fetchone()[0]
        return {"n": n, "bare_s": bare, "bare_rows": bare_rows, "task_s": task, "made": made, "stored": stored}
    finally:
        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


CLIENT = """
import json
from service import create_app
from service.clients.registry import add_client
from service.org import add_item
from models import Department
from service.extensions import db
app = create_app()
with app.app_context():
    d = db.session.scalar(db.select(Department).where(Department.code == 'bench'))
    add_item('bench-license', '压测营业执照', d)
    _, key = add_client('bench-approval', 'approval', d)
    db.session.commit()
    print(json.dumps({'key': key}))
"""


def _wrk(ctx, url: str, script: str, env: dict, seconds: int) -> dict:
    """wrk with ``script`` and the CPU per request by part (web workers, PostgreSQL, Redis,
    the Celery workers sending the SMS), rounded for the printout."""
    result = ctx.measured(url, lambda: ctx.wrk_script(url, script, env, seconds))
    result["server_cpu_ms"] = {name: round(ms, 2) for name, ms in result["server_cpu_ms"].items()}
    return result


def put_projects(ctx) -> tuple[dict, dict, list, list]:
    key = json.loads(_python(CLIENT, ctx.env).strip().splitlines()[-1])["key"]
    done_at = (datetime.now(timezone(timedelta(hours=8))) - timedelta(hours=1)).replace(microsecond=0).isoformat()
    seconds = ctx.args.seconds

    def projects():
        return _wrk(ctx, ctx.hcp_url, "projects.lua", {"BENCH_KEY": key, "BENCH_NONCE": secrets.token_hex(4),
                                                       "BENCH_DONE_AT": done_at}, seconds)

    def baseline():
        return ctx.wrk(ctx.base_url, "/baseline", "", seconds, secrets.token_hex(4))

    _wrk(ctx, ctx.hcp_url, "projects.lua", {"BENCH_KEY": key, "BENCH_NONCE": secrets.token_hex(4),
                                            "BENCH_DONE_AT": done_at}, 2)  # warm up
    hcp_runs, base_runs = [], []
    for round_no in range(ctx.args.rounds):
        base_runs.append(baseline())
        hcp_runs.append(ctx.profiled("projects", projects) if round_no == 0 else projects())
    return (max(hcp_runs, key=lambda r: r["rps"]), max(base_runs, key=lambda r: r["rps"]), hcp_runs, base_runs)


def run(ctx) -> list[dict]:
    rows = []
    hcp, base, hcp_runs, base_runs = put_projects(ctx)
    ratio = hcp["rps"] / base["rps"]
    errors = sum(r["non2xx"] + r["socket_errors"] for r in hcp_runs)
    print("PUT /projects server CPU ms per request:", hcp["server_cpu_ms"], "baseline:", base.get("server_cpu_ms"))
    rows.append({"name": "PUT /projects req/s (done: invitation + SMS each)", "hcp": f"{hcp['rps']:.0f}",
                 "baseline": f"{base['rps']:.0f}", "ratio": ratio, "target": "≥ 0.5×",
                 "ok": ratio >= 0.5 and errors == 0, "raw": {"hcp": hcp_runs, "baseline": base_runs,
                                                             "errors": errors}})
    n = int(os.environ.get("BENCH_DEFAULT_INVITATIONS", "200000"))
    if n <= 0:  # BENCH_DEFAULT_INVITATIONS=0: the PUT row alone
        return rows
    env = {k: v for k, v in ctx.env.items() if k != "HCP_DATABASE_URL"}
    d = default_ratings(n, env)
    ratio = d["bare_s"] / d["task_s"] if d["task_s"] else None
    ok = d["made"] == d["stored"] == d["bare_rows"] == n and ratio is not None and ratio >= 0.5
    rows.append({"name": f"default ratings, {n:,} due invitations (s)", "hcp": f"{d['task_s']:.1f}",
                 "baseline": f"bare INSERT…SELECT {d['bare_s']:.1f}", "ratio": ratio,
                 "target": "≥ 0.5× (≤ 2× the time)", "ok": ok, "raw": d})
    return rows
