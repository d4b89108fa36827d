"""The bureau's work summary (SPEC §10): ``hcp report`` and ``GET /api/v1/reports``.

The report says what the stats API says for the same period and scope, in Chinese, as
Markdown, Word or a PDF whose Chinese text is real text in an embedded font.
"""
from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.support import bearer
from tests.test_insights import spec, store

REPORTS = "/api/v1/reports"
YEAR = {"from": "2021-01-01", "to": "2021-12-31"}


@pytest.fixture
def bureau(org):
    """district → a (item-a, a handler and a supervisor), district → b; a hall device each."""
    root = org.department("district", "示范区政务服务中心")
    a = org.department("bureau-a", "区不动产登记中心", parent=root)
    b = org.department("bureau-b", "区市场监管局", parent=root)
    org.item("item-a", a)
    users = {"manager": org.user("mgr", "manager", root), "sup-a": org.user("sup-a", "supervisor", a),
             "h-a": org.user("h-a", "handler", a), "sup-root": org.user("sup-root", "supervisor", root),
             "h-b": org.user("h-b", "handler", b)}
    devices = {"a": org.device(a, name="a hall")[0], "b": org.device(b, name="b hall")[0]}
    return {"depts": {"root": root, "a": a, "b": b}, "users": users, "devices": devices}


def close_all_rectified(app, supervisor) -> int:
    """Route every bad rating and take its case through verify → rectify → feedback (closed, rectified)."""
    from models import Case, Rating, User
    from service.cases.routing import route
    from service.cases.workflow import apply
    from service.extensions import db

    with app.app_context():
        for rating_id in db.session.scalars(select(Rating.id).where(Rating.negative.is_(True))):
            route(db.session, rating_id)
        db.session.commit()
        cases = list(db.session.scalars(select(Case).order_by(Case.id)))
        for case in cases:
            handler = db.session.get(User, case.assignee_id) if case.assignee_id else None
            if handler is None:
                apply(db.session, case, db.session.get(User, supervisor.id), "assign", {"assignee": "h-b"})
                handler = db.session.get(User, case.assignee_id)
            apply(db.session, case, handler, "verify", {"contacted": True})
            apply(db.session, case, handler, "rectify", {"measures": {"cause": "等候久", "action": "增开窗口"}})
            apply(db.session, case, handler, "feedback", {"contacted": True, "satisfied": True})
        db.session.commit()
        return len(cases)


def get(client, token, **params):
    return client.get(REPORTS, query_string=params, headers=bearer(token) if token else {})


def test_a_district_year_reads_as_its_report(app, client, org, bureau):
    """A replay of the district's 2021: 64,339 ratings, 187 bad, every one disposed and rectified."""
    devices = bureau["devices"]
    bad_left, specs = 187, []
    for i in range(64339):
        day = date(2021, 1, 1) + timedelta(days=i % 365)
        if bad_left and i % 344 == 7:
            bad_left -= 1
            specs.append({**spec(day, 1 + i % 2, "排队时间太长，跑两趟才办完"),
                          "rater": {"real_name": True, "name": "陈先生", "phone": f"1380000{i % 10000:04d}"}})
        else:
            specs.append(spec(day, 5 - i % 3))
    assert bad_left == 0
    for start in range(0, len(specs), 500):
        store(app, devices["a" if start % 1000 else "b"], specs[start:start + 500], count=False)
    assert close_all_rectified(app, bureau["users"]["sup-root"]) == 187

    manager = org.token(bureau["users"]["manager"])
    resp = get(client, manager, format="md", **YEAR)
    assert resp.status_code == 200 and resp.mimetype == "text/markdown"
    assert 'filename="hcp-report-district-2021-01-01-2021-12-31.md"' in resp.headers["Content-Disposition"]
    text = resp.get_data(as_text=True)
    assert "全年共收到评价64,339条，其中好评64,152条、差评187条，好评率99.71%；差评处置率100%、整改率100%。" in text
    summary = client.get("/api/v1/stats/summary", query_string=YEAR, headers=bearer(manager)).get_json()
    assert (summary["total"], summary["good"], summary["bad"]) == (64339, 64152, 187)
    # the tables: every department of the scope, and a total equal to the summary
    assert "| 区不动产登记中心 |" in text and "| 区市场监管局 |" in text
    assert "| 合计 | 64,339 | 64,152 | 187 | 99.71% | 100% | 100% |" in text
    assert text.count("| 2021-") == 12  # one row per month


def _fill(app, bureau, low_month: bool = True) -> None:
    """A few months of ratings in bureau-a with comments; November's good rate far under the floor."""
    from models import Rating
    from service.extensions import db
    from service.insights import counting

    dev = bureau["devices"]["a"]
    specs = [spec(date(2021, 10, 1 + i % 28), 5, "窗口服务热情，不动产登记很快") for i in range(40)]
    if low_month:
        specs += [spec(date(2021, 11, 1 + i % 28), 1 if i % 2 else 5, "营业执照跑两趟，排队太久") for i in range(30)]
    store(app, dev, specs)
    with app.app_context():  # the term counts, as the count task does after each batch
        counting.count(db.session, list(db.session.scalars(select(Rating.id))))
        db.session.commit()


def test_months_under_the_floor_and_hot_spots_are_in_the_report(app, client, org, bureau):
    _fill(app, bureau)
    manager = org.token(bureau["users"]["manager"])
    text = get(client, manager, format="md", **{"from": "2021-10-01", "to": "2021-11-30"}).get_data(as_text=True)
    assert text.startswith("# 示范区政务服务中心好差评工作情况报告")
    assert "本期共收到评价70条" in text
    assert "好评率低于96%的月份：2021-11（50%）。" in text
    assert "| 跑两趟 |" in text and "| 营业执照 |" in text  # the hot spots table
    # the report and the hot spots API agree on the top term
    top = client.get("/api/v1/insights/hotspots", query_string={"from": "2021-10-01", "to": "2021-11-30"},
                     headers=bearer(manager)).get_json()["terms"][0]
    assert f"| {top['term']} | {top['count']} |" in text

    october = get(client, manager, format="md", **{"from": "2021-10-01", "to": "2021-10-31"}).get_data(as_text=True)
    assert "各月好评率均不低于96%。" in october


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils not installed")
def test_the_pdf_holds_chinese_text_in_an_embedded_font_and_renders(app, client, org, bureau, tmp_path, recwarn):
    _fill(app, bureau)
    supervisor = org.token(bureau["users"]["sup-a"])
    resp = get(client, supervisor, **{"from": "2021-10-01", "to": "2021-11-30"})  # pdf is the default
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(resp.data)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "区不动产登记中心好差评工作情况报告" in text  # a supervisor's report is of their department
    assert "本期共收到评价70条" in text and "五、堵点难点" in text and "图2 各月评价数与好评率" in text
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts  # every font embedded
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    page = next(tmp_path.glob("page*.png"))
    assert page.stat().st_size > 5000  # a page with text and a chart, not a blank one
    # matplotlib found every glyph of the chart labels in the Chinese font (no empty boxes)
    assert not [w for w in recwarn if "missing from" in str(w.message)]


def test_the_word_document_has_the_tables_and_charts(app, client, org, bureau):
    from docx import Document

    _fill(app, bureau)
    manager = org.token(bureau["users"]["manager"])
    resp = get(client, manager, format="docx", **{"from": "2021-10-01", "to": "2021-11-30"})
    assert resp.status_code == 200 and resp.mimetype.endswith("wordprocessingml.document")
    doc = Document(io.BytesIO(resp.data))
    paragraphs = [p.text for p in doc.paragraphs]
    assert paragraphs[0] == "示范区政务服务中心好差评工作情况报告"
    assert any(p.startswith("本期共收到评价70条") for p in paragraphs)
    headers = [[c.text for c in t.rows[0].cells] for t in doc.tables]
    assert ["部门", "评价数", "好评", "差评", "好评率", "差评处置率", "差评整改率", "按期办结率"] in headers
    assert ["关键词", "提及次数", "其中差评", "差评占比", "上期", "趋势"] in headers
    assert len(doc.inline_shapes) == 2  # the two charts
    assert doc.core_properties.title == "示范区政务服务中心好差评工作情况报告"


def test_reports_are_scoped_like_the_figures(app, client, org, bureau):
    users = bureau["users"]
    sup_a = org.token(users["sup-a"])
    assert get(client, sup_a, format="md", department="bureau-b", **YEAR).status_code == 404
    assert get(client, sup_a, format="md", department="nope", **YEAR).status_code == 404
    assert get(client, org.token(users["h-a"]), format="md", **YEAR).status_code == 403
    assert get(client, None, format="md", **YEAR).status_code == 401
    for params, field in [({"format": "xls", **YEAR}, "format"), ({"format": "md", "to": "2021-12-31"}, "from"),
                          ({"format": "md", "from": "2021-12-31", "to": "2021-01-01"}, "to")]:
        resp = get(client, sup_a, **params)
        assert resp.status_code == 422 and field in str(resp.get_json()["errors"]), params
    empty = get(client, sup_a, format="md", **YEAR).get_data(as_text=True)
    assert "全年共收到评价0条" in empty and "差评处置率—" in empty


def test_a_missing_font_is_a_clear_503_and_markdown_still_works(app, client, org, bureau, monkeypatch):
    monkeypatch.setattr(app.config["HCP_SETTINGS"], "report_font", "/nonexistent/font.ttc")
    manager = org.token(bureau["users"]["manager"])
    resp = get(client, manager, format="pdf", **YEAR)
    assert resp.status_code == 503 and "HCP_REPORT_FONT" in resp.get_json()["message"]
    assert get(client, manager, format="md", **YEAR).status_code == 200


def test_hcp_report_writes_the_file(app, org, bureau, tmp_path, shell):
    _fill(app, bureau, low_month=False)
    out = tmp_path / "2021.docx"
    proc = shell("report", "--from", "2021-01-01", "--to", "2021-12-31", "--department", "bureau-a",
               "--format", "docx", "--out", str(out))
    assert "全年共收到评价40条，其中好评40条、差评0条" in proc.stdout
    from docx import Document
    assert Document(str(out)).paragraphs[0].text == "区不动产登记中心好差评工作情况报告"
    bad = shell("report", "--from", "2021-01-01", "--to", "2021-12-31", "--department", "nope", check=False)
    assert bad.returncode == 2 and "nope" in bad.stderr
