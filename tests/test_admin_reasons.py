"""评价原因 in the console (SPEC §12): the active version and its options per level; a CSV
import shows what changes before anything is stored, then becomes the active version."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from models import AuditEntry, ReasonVersion
from service.reasons import table
from tests.web_support import add_staff, csrf_token, login

NEW = ("code,label,dimension,scope,levels\n"
       "off_eff_fast,办理速度很快,服务效率,offline,345\n"  # changed label
       "off_att_rude,态度生硬、言语不文明,服务态度,offline,12\n"  # kept as shipped
       "off_env_cold,大厅太冷,服务环境,offline,12\n")  # new


@pytest.fixture
def admin(app, org):
    hall = org.department("hall", "政务服务中心")
    add_staff(app, [("admin", "admin", hall, "管理员"), ("manager", "manager", hall, "王主任")])


def upload(client, text: str, path="/admin/reasons/preview", name="reasons.csv"):
    token = csrf_token(client.get("/admin/reasons").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, "file": (io.BytesIO(text.encode("utf-8")), name)},
                       content_type="multipart/form-data")


def test_the_active_version_per_level(app, admin, client):
    login(client, "admin")
    page = client.get("/admin/reasons").get_data(as_text=True)
    assert "当前第 0 版（系统内置）" in page
    bad_levels = page.split("不满意（2）")[1].split("</section>")[0]
    assert "态度生硬、言语不文明" in bad_levels and "办理速度快" not in bad_levels


def test_a_preview_shows_the_changes_and_stores_nothing_until_confirmed(app, admin, client, query):
    shipped = {o.code: o for o in table.shipped()}
    assert shipped["off_att_rude"].label == "态度生硬、言语不文明"  # the fixture's assumption
    login(client, "admin")
    resp = upload(client, NEW)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    added = page.split('class="card preview-added"')[1].split("</section>")[0]
    changed = page.split('class="card preview-changed"')[1].split("</section>")[0]
    removed = page.split('class="card preview-removed"')[1].split("</section>")[0]
    assert "off_env_cold" in added and "大厅太冷" in added
    assert "办理速度快" in changed and "办理速度很快" in changed and "off_att_rude" not in changed
    assert "off_eff_wait" in removed
    assert query(lambda s: s.scalar(select(func.count(ReasonVersion.id)))) == 0

    token = csrf_token(page)
    resp = client.post("/admin/reasons/import", data={"csrf_token": token, "csv_text": NEW.replace("\n", "\r\n"),
                                                      "filename": "reasons.csv"})
    assert resp.status_code == 302
    version = query(lambda s: s.scalar(select(func.max(ReasonVersion.id))))
    page = client.get("/admin/reasons").get_data(as_text=True)
    assert f"当前第 {version} 版" in page and "大厅太冷" in page
    entry = query(lambda s: s.scalar(select(AuditEntry).where(AuditEntry.action == "reasons.import")))
    assert entry.after["新增"] == 1 and entry.after["修改"] == 1 and entry.after["条数"] == 3
    assert entry.before == {"版本": 0, "条数": len(shipped)}
    offered = client.get("/api/v1/reasons?level=1").get_json()  # what tablets and the citizen page offer now
    assert offered["version"] == version and {r["code"] for r in offered["reasons"]} == {"off_att_rude", "off_env_cold"}


def test_a_bad_file_is_answered_in_chinese_with_its_line(app, admin, client, query):
    login(client, "admin")
    resp = upload(client, NEW + "bad code!,名称,维度,offline,12\n")
    assert resp.status_code == 422 and "第5行：代码须为1–32位字母" in resp.get_data(as_text=True)
    resp = upload(client, "code;label\n")
    assert resp.status_code == 422 and "第1行：表头应为" in resp.get_data(as_text=True)
    token = csrf_token(client.get("/admin/reasons").get_data(as_text=True))
    resp = client.post("/admin/reasons/preview", data={"csrf_token": token}, content_type="multipart/form-data")
    assert resp.status_code == 422 and "请选择要导入的 CSV 文件" in resp.get_data(as_text=True)
    resp = client.post("/admin/reasons/preview", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO("code,label\n\xff".encode("latin-1")), "x.csv")})
    assert resp.status_code == 422 and "UTF-8" in resp.get_data(as_text=True)
    assert query(lambda s: s.scalar(select(func.count(ReasonVersion.id)))) == 0


def test_only_admins_import(app, admin, client):
    login(client, "manager")
    assert client.get("/admin/reasons").status_code == 403
    assert upload(client, NEW).status_code == 403
