"""``hcp exchange status|requeue|export`` (SPEC §8), run as the console script."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models import OutboxRecord, rating_record_id
from models.clock import local_date
from models.types import utcnow
from tests.test_exchange_push import rate, run_push


@pytest.fixture
def hall(org):
    dept = org.department("hall", "区政务服务中心")
    _, key = org.device(dept)
    return dept, key


def lines(out: str) -> dict[str, str]:
    """The ``name\tvalue`` lines of the counts (the reason lines that follow repeat a state's name)."""
    shown = {}
    for line in out.splitlines():
        if "\t" in line:
            name, value = line.split("\t", 1)
            shown.setdefault(name, value)
    return shown


def test_status_counts_each_state_and_the_reasons(app, client, hall, platform, shell):
    ids = rate(client, hall[1], 4)
    shown = lines(shell("exchange", "status").stdout)
    assert (shown["pending"], shown["sent"], shown["rejected"], shown["held"]) == ("4", "0", "0", "0")
    assert shown["oldest pending"] != "-"
    platform.rejects = {rating_record_id(ids[0]): "办件编号不存在"}
    run_push(app)
    out = shell("exchange", "status").stdout
    shown = lines(out)
    assert (shown["pending"], shown["sent"], shown["rejected"]) == ("0", "3", "1")
    assert shown["oldest pending"] == "-"
    assert "rejected\t1\t办件编号不存在" in out


def test_requeue_takes_rejected_records_only_when_asked(app, client, hall, platform, query, shell):
    ids = rate(client, hall[1], 2)
    platform.rejects = {rating_record_id(i): "暂不接收" for i in ids}
    run_push(app)
    assert "0 records requeued" in shell("exchange", "requeue").stdout
    assert "2 records requeued" in shell("exchange", "requeue", "--rejected").stdout
    platform.rejects = {}
    assert run_push(app).sent == 2
    assert set(platform.received) == {rating_record_id(i) for i in ids}


def test_requeue_makes_held_and_backed_off_records_due_now(app, client, hall, platform, query, shell):
    rate(client, hall[1], 1)
    platform.fail_next = [503]
    run_push(app, exchange_backoff_seconds=3600)
    assert query(lambda s: s.scalar(select(OutboxRecord.due_at))) > utcnow() + timedelta(minutes=5)
    assert "1 records requeued" in shell("exchange", "requeue").stdout
    assert run_push(app).sent == 1


def test_export_writes_the_days_records_in_the_profile_and_lists_the_held(app, client, hall, org, query, shell):
    ids = rate(client, hall[1], 3)
    today = local_date(utcnow()).isoformat()
    done = shell("exchange", "export", "--date", today, "--profile", "zhejiang")
    # No credit code for the hall yet: zhejiang holds every record, and says so.
    assert done.stdout == "" and "0 records written, 3 held" in done.stderr and "credit_code" in done.stderr
    shell("departments", "set", "hall", "--credit-code", "11330106002482000B")
    out = shell("exchange", "export", "--date", today, "--profile", "zhejiang").stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["id"] for r in records) == sorted(rating_record_id(i) for i in ids)
    assert {r["data"]["deptCode"] for r in records} == {"11330106002482000B"}
    assert {r["data"]["satisfaction"] for r in records} == {"4"}  # zhejiang: 5 is best
    assert shell("exchange", "export", "--date", "2020-01-01").stdout == ""
    # Exporting changes nothing: the records are still owed.
    assert {r.status for r in query(lambda s: s.scalars(select(OutboxRecord)).all())} == {"pending"}


def test_export_refuses_an_unknown_profile_and_a_bad_date(app, shell):
    bad = shell("exchange", "export", "--date", "2021-12-07", "--profile", "atlantis", check=False)
    assert bad.returncode == 2 and "gbt39046" in bad.stderr
    assert shell("exchange", "export", "--date", "7/12/2021", check=False).returncode == 2


def test_export_to_a_file(app, client, hall, tmp_path, query, shell):
    rate(client, hall[1], 1)
    # A record made yesterday (Asia/Shanghai) is not in today's export.
    query(lambda s: (s.execute(update(OutboxRecord).values(created_at=utcnow().replace(year=2021))), s.commit()))
    target = tmp_path / "out.jsonl"
    shell("exchange", "export", "--date", local_date(utcnow()).isoformat(), "--out", str(target))
    assert target.read_text() == ""
