"""The push's claim codes records in SQL on PostgreSQL (service/exchange/pgcode.py): for every
profile, ratings and case closures covering every code of every table (and values with no
code, empty required fields, quotes and newlines, times with and without microseconds), the
SQL's JSON is the Python encoder's payload, and the SQL holds exactly the records Python holds."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from models import Department, InboundSource, OutboxRecord, Rating
from service.exchange import pgcode, profiles, push, records
from service.exchange.profiles import Held
from tests.test_exchange_push import rate, settings_as

pytestmark = pytest.mark.postgres_only


NO_CODE = {"channel": "no-channel", "level": 9, "assess_number": 3, "reasons": ["no-reason"], "outcome": "no-outcome"}


def _every(field: str) -> list:
    """Every key of ``field``'s code table in any profile."""
    return [profiles._value(k) for k in sorted({k for name in profiles.names()
                                                for k in profiles.load(name).codes.get(field, {})})]


def _fill(app, client, org) -> None:
    """Ratings whose values cycle through every code, and case records through every outcome."""
    from service.extensions import db

    dept = org.department("hall", "区政务服务中心")
    bare = org.department("bare", "无信用代码的部门")
    item = org.item("11330106MB0000001X-0001", dept)
    _, key = org.device(dept)
    _, bare_key = org.device(bare, name="kiosk-2")
    ids = rate(client, key, 36) + rate(client, bare_key, 4)
    channels, levels, numbers = _every("channel"), _every("level"), _every("assess_number")
    reasons = _every("reasons")
    lists = [None, [], reasons[:-1], [reasons[-1]], *[[r, reasons[0]] for r in reasons[1:-1]]]
    no_code = list(NO_CODE.items())[:-1]
    comments = [None, "", '办事"很快"\n谢谢', "it's \\ fine"]
    base = datetime(2026, 11, 20, 1, 30, tzinfo=timezone.utc)
    with app.app_context():
        db.session.execute(update(Department).where(Department.id == dept.id).values(credit_code="11330106MB0000001X"))
        for n, rid in enumerate(ids):
            values = {"channel": channels[n % len(channels)], "level": levels[n % len(levels)],
                      "assess_number": numbers[n % len(numbers)], "reasons": lists[n % len(lists)]}
            if n % 10 == 9:  # one value no profile has a code for
                values.update([no_code[n // 10 % len(no_code)]])
            db.session.execute(update(Rating).where(Rating.id == rid).values(
                **values,
                comment=comments[n % len(comments)], project_no=[None, "", f"P{n}'x"][n % 3],
                real_name=n % 2 == 0, rater_name_masked="张*" if n % 4 else None,
                item_id=item.id if n % 2 else None,
                rated_at=base + timedelta(days=n * 7, hours=n, microseconds=(n % 3) * 1234)))
        db.session.add(InboundSource(rating_id=ids[1], client_id=1, source_id="ZJ-2026-000001"))
        outcomes = _every("outcome") + [NO_CODE["outcome"], None]
        flags = [True, False, None, "maybe"]
        for n in range(max(len(outcomes), len(flags) ** 2)):
            payload = {"outcome": outcomes[n % len(outcomes)], "cause": [None, '原因"一"', "原因\n二"][n % 3],
                       "action": [None, "整改"][n % 2], "contacted": flags[n % 4], "satisfied": flags[n // 4 % 4],
                       "closed_at": (base + timedelta(hours=n, microseconds=(n % 4 == 1) * 500)).isoformat()}
            if n % 2 == 0:
                payload["closed_at"] = ""
            if n % 5 == 0:
                payload["source_id"] = f"ZJ-{n}"
            if n == 3:
                del payload["closed_at"]
            db.session.add(OutboxRecord(record_id=f"case-{n}-1", kind="case", rating_id=ids[n % len(ids)],
                                        case_id=None, created_at=base, due_at=base, payload=payload))
        db.session.commit()


@pytest.mark.parametrize("area_code", ["330106", None])
def test_the_claims_sql_codes_every_profile_as_the_python_encoder_does(app, client, org, area_code):
    from service.extensions import db

    _fill(app, client, org)
    for name in profiles.names():
        profile = profiles.load(name)
        assert pgcode.columns(profile, area_code) is not None, name  # every shipped profile is coded in SQL
        with settings_as(app, exchange_profile=name, area_code=area_code) as settings, app.app_context():
            stmt, params = push._pg_claim(settings)
            rows = db.session.execute(stmt, {**params, "now": datetime(2100, 1, 1, tzinfo=timezone.utc),
                                             "limit": 10_000}).all()
            whole = db.session.execute(push._read([r.id for r in rows])).all()  # what Python codes from
            ratings = {r.r_id: records.rating_values(r) for r in whole if r.r_id is not None}
            neutral = records.neutral(db.session, whole, area_code, ratings)
            db.session.rollback()
        assert len(rows) == 40 + 16
        coded, held = [], 0
        assert [r.id for r in whole] == [r.id for r in rows]
        for row, full in zip(rows, whole):
            try:
                expected = records.shaped(profile, full, neutral[row.id])
            except Held:
                expected = None
            if row.sql_held:
                assert expected is None, (name, row.record_id, expected)
                held += 1
            else:
                assert json.loads(row.sql_record) == expected, (name, row.record_id)
                coded.append(expected)
        if area_code is None and "area_code" in profile.required:
            assert not coded and held == len(rows)
            continue
        assert held and len(coded) > len(rows) / 3, name
        for kind in profiles.KINDS:
            for platform_field, _, _, table in profile.steps[kind]:
                if table:  # every code of every table went out coded by the SQL
                    seen = {c for r in coded if r["type"] == kind
                            for c in (lambda v: v if isinstance(v, list) else [v])(r["data"][platform_field])}
                    assert set(table.values()) <= seen, (name, kind, platform_field)


def test_a_record_whose_rating_is_gone_is_held_in_sql_and_in_python(app, client, org):
    from service.extensions import db

    _, key = org.device(org.department("hall", "区政务服务中心"))
    rid = rate(client, key, 1)[0]
    with app.app_context():
        db.session.execute(update(OutboxRecord).values(rating_id=rid + 1000))
        db.session.commit()
    with settings_as(app) as settings, app.app_context():
        stmt, params = push._pg_claim(settings)
        rows = db.session.execute(stmt, {**params, "now": datetime(2100, 1, 1, tzinfo=timezone.utc), "limit": 10}).all()
        db.session.rollback()
    assert [r.sql_held for r in rows] == [True]
