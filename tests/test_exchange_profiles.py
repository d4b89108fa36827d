"""Exchange profiles (SPEC §8): every code table of every shipped profile, both directions.

A profile added as a data file is picked up by these tests without a line of code: each
of its tables must round-trip and hold only hcp values that exist.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from models import CHANNELS, LEVEL_LABELS, OUTCOME_LABELS
from service.exchange import profiles
from service.exchange.profiles import Held
from service.reasons.table import SHIPPED, parse

TABLES = [(name, table) for name in profiles.names() for table in profiles.load(name).codes]
# The hcp values each neutral field may take, for the tables that code them.
DOMAINS = {
    "level": {str(level) for level in LEVEL_LABELS},
    "level_label": {str(level) for level in LEVEL_LABELS},
    "channel": set(CHANNELS),
    "assess_number": {"1", "2"},
    "outcome": set(OUTCOME_LABELS),
    "contacted": {"true", "false"},
    "satisfied": {"true", "false"},
    "reasons": {o.code for o in parse(SHIPPED.read_text(encoding="utf-8"))},
}


def test_both_profiles_of_the_spec_ship():
    assert {"gbt39046", "zhejiang"} <= set(profiles.names())


@pytest.mark.parametrize(("name", "table"), TABLES, ids=[f"{n}-{t}" for n, t in TABLES])
def test_every_code_round_trips(name, table):
    profile = profiles.load(name)
    codes = profile.codes[table]
    assert codes, "an empty code table codes nothing"
    assert set(codes) <= DOMAINS[table], "a code for a value hcp does not have"
    assert len(set(codes.values())) == len(codes), "two hcp values share a code"
    for value, code in codes.items():
        back = profile.decode(table, code)
        assert profiles._key(back) == value  # hcp → platform → hcp
        assert profile.code(table, back) == code  # platform → hcp → platform


@pytest.mark.parametrize("name", profiles.names())
def test_every_field_names_a_neutral_value_the_records_carry(name):
    neutral = {"project_no", "item_code", "credit_code", "area_code", "channel", "level", "level_label",
               "assess_number", "rated_at", "reasons", "comment", "rater", "rating_record_id", "outcome",
               "cause", "action", "contacted", "satisfied", "closed_at", "source_id"}
    profile = profiles.load(name)
    for kind in profiles.KINDS:
        assert set(profile.fields[kind].values()) <= neutral
    assert profile.times <= neutral and profile.required <= neutral


def test_gbt39046_codes_levels_with_1_as_best():
    p = profiles.load("gbt39046")
    assert [p.code("level", level) for level in (5, 4, 3, 2, 1)] == ["1", "2", "3", "4", "5"]
    assert p.code("level_label", 5) == "非常满意" and p.code("level_label", 1) == "非常不满意"
    assert p.decode("level", "1") == 5


def test_zhejiang_codes_levels_with_5_as_best_and_its_seven_channels():
    p = profiles.load("zhejiang")
    assert [p.code("level", level) for level in (1, 5)] == ["1", "5"]
    assert {ch: p.code("channel", ch) for ch in p.codes["channel"]} == {
        "pc": "1", "mobile": "2", "qrcode": "3", "hall_tablet": "4", "hall_terminal": "5", "sms": "6",
        "default": "7"}
    assert p.decode("channel", "7") == "default"


RATED = datetime(2021, 12, 7, 1, 30, 5, tzinfo=timezone.utc)  # 09:30:05 in Asia/Shanghai


def _rating(**extra) -> dict:
    record = {"project_no": "330100-2021-0001", "item_code": "ITEM-1", "credit_code": "11330100MB0000000X",
              "area_code": "330106", "channel": "hall_terminal", "level": 2, "level_label": 2,
              "assess_number": 1, "rated_at": RATED, "reasons": ["off_eff_slow"], "comment": "等太久",
              "rater": "张*"}
    record.update(extra)
    return record


def test_a_zhejiang_rating_in_its_shape_and_back():
    p = profiles.load("zhejiang")
    out = p.encode("rating", _rating())
    assert out == {"projectNo": "330100-2021-0001", "taskCode": "ITEM-1", "deptCode": "11330100MB0000000X",
                   "areaCode": "330106", "pf": "5", "satisfaction": "2", "assessNumber": "1",
                   "assessTime": "2021-12-07 09:30:05", "evalDetail": ["0104"], "writingEvaluation": "等太久"}
    back, errors = p.decode_record("rating", out)
    assert errors == {}
    assert back["rated_at"] == RATED and back["level"] == 2 and back["channel"] == "hall_terminal"
    assert back["reasons"] == ["off_eff_slow"]


def test_a_gbt39046_rating_in_its_shape():
    out = profiles.load("gbt39046").encode("rating", _rating(channel="hotline", level=5, level_label=5))
    assert out["评价时间"] == "20211207T093005"
    assert out["满意度代码"] == "1" and out["满意度"] == "非常满意" and out["评价渠道"] == "6"
    assert out["行政区划"] == "330106" and out["评价次数"] == "1"


def test_a_value_without_a_code_is_held_never_mis_coded():
    p = profiles.load("zhejiang")
    with pytest.raises(Held) as held:
        p.encode("rating", _rating(channel="hotline"))
    assert held.value.reasons == ["channel hotline has no code in profile zhejiang"]
    with pytest.raises(Held) as held:
        p.encode("rating", _rating(reasons=["off_eff_slow", "imported_later"]))
    assert "reasons imported_later has no code in profile zhejiang" in held.value.reasons


def test_a_record_without_the_area_or_credit_code_is_held():
    with pytest.raises(Held) as held:
        profiles.load("zhejiang").encode("rating", _rating(area_code=None, credit_code=""))
    assert held.value.reasons == ["area_code is not set", "credit_code is not set"]


def test_a_code_the_profile_lacks_is_an_error_naming_the_field_inbound():
    values, errors = profiles.load("zhejiang").decode_record("rating", {"pf": "9", "satisfaction": "5",
                                                                        "assessTime": "yesterday"})
    assert set(errors) == {"pf", "assessTime"} and values["level"] == 5


def test_12345_satisfaction_0_to_3_is_levels_2_to_5_and_非常不满意_has_no_code():
    p = profiles.load("hotline")
    assert [p.decode("level", code) for code in "0123"] == [2, 3, 4, 5]
    with pytest.raises(KeyError):
        p.code("level", 1)
    back, errors = p.decode_record("rating", {"ticket_no": "T-1", "satisfaction": 0,
                                              "called_at": "2021-12-07T09:30:05+08:00"})
    assert errors == {} and back == {"project_no": "T-1", "level": 2, "rated_at": RATED}
    _, errors = p.decode_record("rating", {"called_at": "2021-12-07T09:30:05"})
    assert set(errors) == {"called_at"}  # no offset: not guessed


def test_an_unknown_profile_names_the_ones_there_are():
    with pytest.raises(profiles.UnknownProfile, match="gbt39046"):
        profiles.load("atlantis")
    with pytest.raises(profiles.UnknownProfile):
        profiles.load("../setup")
