"""Rater data and secrets at rest: encrypted or hashed, never in clear in any column."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Rating
from service.extensions import db
from service.privacy import decrypt, mask_name, mask_phone
from tests.support import bearer, rating_body

PHONE, NAME = "13987654321", "欧阳明"


def every_text_value(session) -> list[str]:
    """Every string value in every table the models know."""
    values = []
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if _is_textual(c)]
        for row in session.execute(select(*columns)) if columns else []:
            values += [str(v) for v in row if v is not None]
    return values


def _is_textual(column) -> bool:
    try:
        return column.type.python_type in (str, dict, list)
    except NotImplementedError:
        return True


def test_rater_phone_and_name_are_never_stored_in_clear(app, client, org, query):
    dept = org.department("d1")
    _, key = org.device(dept)
    body = rating_body(level=1, comment="窗口排队", rater={"real_name": True, "name": NAME, "phone": PHONE})
    rid = client.post("/api/v1/ratings", json=body, headers=bearer(key)).get_json()["id"]
    values = query(every_text_value)
    assert values, "the scan read nothing"
    assert not [v for v in values if PHONE in v or NAME in v]
    with app.app_context():
        row = db.session.get(Rating, rid)
        assert decrypt(row.rater_phone_enc) == PHONE and decrypt(row.rater_name_enc) == NAME
        assert (row.rater_phone_masked, row.rater_name_masked) == ("139******21", "欧**")


def test_device_key_and_token_are_stored_hashed(app, client, org, query):
    dept = org.department("d1")
    _, key = org.device(dept)
    user = org.user("h", "handler", dept, password="pw-in-clear-1")
    token = org.token(user)
    values = query(every_text_value)
    for secret in (key, token, "pw-in-clear-1"):
        assert not [v for v in values if secret in v]


def test_anonymous_rating_carries_no_personal_data(app, client, org, query):
    dept = org.department("d1")
    _, key = org.device(dept)
    rid = client.post("/api/v1/ratings", json=rating_body(level=2, rater={"real_name": False}),
                      headers=bearer(key)).get_json()["id"]
    row = query(lambda s: s.get(Rating, rid))
    assert not any([row.real_name, row.rater_name_enc, row.rater_phone_enc, row.rater_phone_masked])


def test_masks():
    assert mask_phone("13812345678") == "138******78"
    assert mask_name("张三") == "张*" and mask_name("欧阳明") == "欧**"
    assert mask_phone(None) is None


@pytest.mark.parametrize("phone", ["12", "110", "9559", "95598", "870999", "8709999"])
def test_a_short_phone_hides_at_least_half_and_keeps_its_first_digit(phone):
    masked = mask_phone(phone)
    assert len(masked) == len(phone) and masked[0] == phone[0]
    assert all(m in (p, "*") for m, p in zip(masked, phone))
    assert masked.count("*") >= len(phone) / 2


def test_normalise_phone_keeps_the_ascii_digits_only():
    from service.privacy import normalise_phone

    assert normalise_phone("+86 138-1234 5670") == "8613812345670"
    assert normalise_phone("0571-8709 9999 EXT 90") == "05718709999990"
    assert normalise_phone("１３８12345678") == "12345678"  # full-width digits are not ASCII
    assert normalise_phone("—") is None and normalise_phone("") is None and normalise_phone(None) is None


@pytest.mark.parametrize("phone", ["62345678", "13812345678", "12345", "1234567", "+8613812345678",
                                   "02161234567", "1" * 20, "12", "1"])
def test_a_masked_phone_hides_at_least_half_its_digits(phone):
    """SPEC §11 (issue 11 #7): 62345678 showed as 623*5678, seven of its eight digits."""
    masked = mask_phone(phone)
    digits = phone.lstrip("+")
    hidden = masked.count("*")
    assert len(masked) == len(phone) and hidden * 2 >= len(digits)
    shown = [c for c in masked.lstrip("+") if c != "*"]
    assert len(shown) == len(digits) - hidden


def test_blind_index_is_keyed_and_normalised(app):
    from service.privacy import blind_index

    with app.app_context():
        index = blind_index("13812345678")
        assert index == blind_index("138-1234 5678")
        assert index != blind_index("13812345679")
        assert "13812345678" not in index and len(index) == 64
        assert blind_index(None) is None and blind_index("—") is None
        app.config["SECRET_KEY"], saved = "another-key", app.config["SECRET_KEY"]
        try:
            assert blind_index("13812345678") != index
        finally:
            app.config["SECRET_KEY"] = saved


def test_masks_stored_before_are_cut_to_half_by_migration_0011(app, client, org, query):
    """Ratings stored with the old mask (623*5678) get one that hides half, without the clear phone."""
    import importlib.util

    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy import update

    from tests.support import ROOT

    _, key = org.device(org.department("d1"))
    ids = [client.post("/api/v1/ratings", json=rating_body(level=2, rater={"real_name": True, "name": NAME,
                                                                          "phone": phone}),
                       headers=bearer(key)).get_json()["id"] for phone in ("62345678", "13812345678")]

    def old_masks_then_migrate(session):
        for rid, old in zip(ids, ("623*5678", "138****5678")):
            session.execute(update(Rating).where(Rating.id == rid).values(rater_phone_masked=old))
        path = ROOT / "models" / "migrations" / "versions" / "0011_mask_half.py"
        spec = importlib.util.spec_from_file_location("mask_half", path)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        with Operations.context(MigrationContext.configure(session.connection())):
            migration.upgrade()
        session.commit()
        return [session.get(Rating, rid).rater_phone_masked for rid in ids]

    assert query(old_masks_then_migrate) == ["62****78", "138******78"]
