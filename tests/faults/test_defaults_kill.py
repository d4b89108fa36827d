"""The default-rating sweep SIGKILLed mid-run (SPEC §7, issue 13): never two ratings for one
invitation, none missing after the next run.

``HCP_FAULT_DEFAULT_INVITATIONS`` due invitations (default 100,000; loaded with the bench's
statements, bench/applications.py) are turned into default ratings by ``hcp ratings
run-defaults --batch-size 1000`` in a process of its own, SIGKILLed once a few batches have
committed; a second run finishes the job. Afterwards every invitation has exactly one
rating, the sweep's queue is empty, and each default rating has one 上报 record.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from bench.applications import LOAD_INVITATIONS, LOAD_PROJECTS, LOAD_UNSETTLED
from tests.stack import sigkill_tree

pytestmark = pytest.mark.faults
N = int(os.environ.get("HCP_FAULT_DEFAULT_INVITATIONS", "100000"))
HCP = str(Path(sys.executable).parent / "hcp")


def test_a_default_sweep_killed_mid_run_leaves_one_rating_per_invitation(redis, stack_factory):
    from service.extensions import db
    from service.invitations.rate import system_device
    from service.org import add_department, add_item

    stack = stack_factory(redis)
    app = stack.migrate()
    with app.app_context():
        dept = add_department("defaults", "默认评价区", None)
        item = add_item("defaults-item", "营业执照办理", dept)
        db.session.flush()
        system_device(db.session, dept.id, "default")
        db.session.commit()
        org = {"department_id": dept.id, "item_id": item.id, "n": N}
    dsn = stack.env["HCP_DATABASE_URL"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(LOAD_PROJECTS, org)
        conn.execute(LOAD_INVITATIONS)
        conn.execute(LOAD_UNSETTLED)

    def defaults(conn) -> int:
        return conn.execute("SELECT count(*) FROM ratings WHERE is_default").fetchone()[0]

    sweep = subprocess.Popen([HCP, "ratings", "run-defaults", "--batch-size", "1000"], env={**os.environ, **stack.env},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with psycopg.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 120
        while defaults(conn) < 3000 and sweep.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the committed batches, with a deadline
        assert sweep.poll() is None, "the sweep ended before it was killed: " + sweep.stdout.read().decode()[-500:]
        sigkill_tree(sweep.pid)
        sweep.wait(timeout=30)
        killed_at = defaults(conn)
    assert 0 < killed_at < N
    again = subprocess.run([HCP, "ratings", "run-defaults"], env={**os.environ, **stack.env}, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    with psycopg.connect(dsn) as conn:
        total, invitations = conn.execute(
            "SELECT count(*), count(DISTINCT invitation_id) FROM ratings WHERE is_default").fetchone()
        queued = conn.execute("SELECT count(*) FROM invitations_unsettled").fetchone()[0]
        records = conn.execute("SELECT count(*), count(DISTINCT o.rating_id) FROM exchange_outbox o "
                               "JOIN ratings r ON r.id = o.rating_id WHERE r.is_default").fetchone()
    print(f"\nFIGURES default_sweep_kill: invitations={N} killed_at={killed_at} "
          f"second_run={again.stdout.strip()!r} ratings={total} distinct_invitations={invitations} "
          f"queue_left={queued} outbox_records={records[0]}")
    assert (total, invitations, queued) == (N, N, 0)
    assert records == (N, N)
