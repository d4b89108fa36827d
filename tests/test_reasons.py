"""Reason codes (SPEC §7): the shipped table, import of a new version, ratings validated
per level, and the breakdown by reason."""
from __future__ import annotations

import re

from sqlalchemy import select

from models import Rating
from service.stats import figures
from tests.support import bearer, rating_body

NEW_TABLE = """code,label,dimension,scope,levels
wait,等候太久,服务效率,offline,12
kind,热情,服务态度,offline,45
"""


def test_shipped_table_by_level(app, client, org):
    dept = org.department("d1")
    _, key = org.device(dept)
    body = client.get("/api/v1/reasons?level=1", headers=bearer(key)).get_json()
    assert body["version"] == 0
    dimensions = {r["dimension"] for r in body["reasons"]}
    assert {"服务效率", "服务水平", "服务态度", "办事效率", "办事指南精确度", "办事便捷度", "平台操作性"} <= dimensions
    assert all(1 in r["levels"] for r in body["reasons"])
    good = client.get("/api/v1/reasons?level=5", headers=bearer(key)).get_json()["reasons"]
    assert good and not {r["code"] for r in good} & {r["code"] for r in body["reasons"]}
    assert client.get("/api/v1/reasons?level=6", headers=bearer(key)).status_code == 422
    assert client.get("/api/v1/reasons").status_code == 401
    token = org.token(org.user("h1", "handler", dept))
    assert client.get("/api/v1/reasons", headers=bearer(token)).status_code == 200


def test_rating_reasons_checked_per_level(app, client, org, query):
    dept = org.department("d1")
    _, key = org.device(dept)
    ok = client.post("/api/v1/ratings", json=rating_body(level=2, reasons=["off_att_rude", "off_eff_wait"]),
                     headers=bearer(key))
    assert ok.status_code == 201
    assert query(lambda s: s.get(Rating, ok.get_json()["id"]).reasons) == ["off_att_rude", "off_eff_wait"]

    for reasons, message in ((["nope"], "unknown reason code nope"),
                             (["off_att_warm"], "not offered for level 2"),
                             (["off_att_rude", "off_att_rude"], "twice")):
        resp = client.post("/api/v1/ratings", json=rating_body(level=2, reasons=reasons), headers=bearer(key))
        assert resp.status_code == 422
        assert message in " ".join(resp.get_json()["errors"]["json"]["reasons"])
    batch = client.post("/api/v1/ratings/batch", headers=bearer(key), json={"ratings": [
        rating_body(level=5, reasons=["off_att_warm"]), rating_body(level=5, reasons=["off_att_rude"])]})
    assert [r["status"] for r in batch.get_json()["results"]] == ["created", "invalid"]
    assert query(lambda s: len(s.scalars(select(Rating.id)).all())) == 2


def test_import_replaces_the_active_version(app, client, org, tmp_path, query, shell):
    dept = org.department("d1")
    _, key = org.device(dept)
    old = client.post("/api/v1/ratings", json=rating_body(level=1, reasons=["off_att_rude"]), headers=bearer(key))
    assert old.status_code == 201

    bad = tmp_path / "bad.csv"
    bad.write_text("code,label,dimension,scope,levels\nx,X,维度,offline,16\n", encoding="utf-8")
    proc = shell("reasons", "import", str(bad), check=False)
    assert proc.returncode != 0 and "line 2" in proc.stderr and "levels" in proc.stderr

    good = tmp_path / "reasons.csv"
    good.write_text(NEW_TABLE, encoding="utf-8-sig")
    # The version is the new row's id: not 1 on PostgreSQL after other tests imported (TRUNCATE keeps sequences).
    version = int(re.search(r"version (\d+) active: 2 reasons", shell("reasons", "import", str(good)).stdout).group(1))
    listed = client.get("/api/v1/reasons?level=1", headers=bearer(key)).get_json()
    assert listed["version"] == version and [r["code"] for r in listed["reasons"]] == ["wait"]
    assert client.post("/api/v1/ratings", json=rating_body(level=1, reasons=["off_att_rude"]),
                       headers=bearer(key)).status_code == 422
    assert client.post("/api/v1/ratings", json=rating_body(level=1, reasons=["wait"]),
                       headers=bearer(key)).status_code == 201

    # The old code stays readable: the breakdown still names it.
    from datetime import date
    with app.app_context():
        from service.extensions import db
        result = figures.breakdown(db.session, figures.Filters(date(2026, 11, 1), date(2026, 11, 30)), "reason")
    labels = {g["key"]: g["label"] for g in result["groups"]}
    assert labels == {"off_att_rude": "服务态度·态度生硬、言语不文明", "wait": "服务效率·等候太久"}


def test_breakdown_by_reason_counts_raw_rows(app, client, org):
    root = org.department("district")
    hall = org.department("hall", parent=root)
    other = org.department("other", parent=root)
    _, k_hall = org.device(hall, name="a")
    _, k_other = org.device(other, name="b")
    posts = [(k_hall, 1, ["off_att_rude", "off_eff_wait"]), (k_hall, 2, ["off_att_rude"]),
             (k_hall, 5, ["off_att_warm"]), (k_hall, 3, None), (k_other, 1, ["off_att_rude"])]
    for key, level, reasons in posts:
        extra = {"reasons": reasons} if reasons else {}
        assert client.post("/api/v1/ratings", json=rating_body(level=level, **extra),
                           headers=bearer(key)).status_code == 201
    token = org.token(org.user("m1", "manager", hall))
    resp = client.get("/api/v1/stats/breakdown?by=reason&from=2026-11-01&to=2026-11-30", headers=bearer(token))
    assert resp.status_code == 200
    body = resp.get_json()
    groups = {g["key"]: g for g in body["groups"]}
    assert {k: (g["total"], g["bad"]) for k, g in groups.items()} == {
        "off_att_rude": (2, 2), "off_eff_wait": (1, 1), "off_att_warm": (1, 0)}
    assert body["groups"][0]["key"] == "off_att_rude"
    assert body["total"]["total"] == 4  # the summary of the scope, reasons or not
    csv = client.get("/api/v1/stats/export?format=csv&by=reason&from=2026-11-01&to=2026-11-30",
                     headers=bearer(token))
    assert csv.status_code == 200 and "评价原因" in csv.get_data(as_text=True)
