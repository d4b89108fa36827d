"""评价原因: the active reason table (评价指标 / 差评原因) and its options per level; a CSV
imported with a preview of what changes first — through service/reasons/table.py, the
functions ``hcp reasons list|import`` call."""
from __future__ import annotations

from flask import render_template, request, url_for

from models import LEVEL_LABELS
from service.extensions import db
from service.reasons import table
from service.web.admin import admin_only, blp, saved

MAX_FILE = 512 * 1024
SCOPE_LABELS = {"offline": "线下（大厅）", "online": "线上"}


def _page(error: str | None = None, status: int = 200):
    version, options = table.active(db.session)
    by_level = [(level, LEVEL_LABELS[level], [o for o in options if level in o.levels]) for level in (5, 4, 3, 2, 1)]
    return render_template("admin/reasons.html", version=version, by_level=by_level, error=error,
                           scopes=SCOPE_LABELS, count=len(options)), status


def _uploaded() -> tuple[str | None, str | None]:
    """The CSV's text (UTF-8, with or without BOM) from the upload or the preview's hidden copy."""
    if "csv_text" in request.form:
        return request.form["csv_text"], None
    file = request.files.get("file")
    if file is None or not file.filename:
        return None, "请选择要导入的 CSV 文件"
    raw = file.read(MAX_FILE + 1)
    if len(raw) > MAX_FILE:
        return None, "文件过大（不超过 512 KB）"
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return None, "文件须为 UTF-8 编码的 CSV（Excel 中另存为“CSV UTF-8”）"


@blp.get("/reasons")
@admin_only
def reasons():
    return _page()


@blp.post("/reasons/preview")
@admin_only
def reasons_preview():
    text, problem = _uploaded()
    if problem:
        return _page(problem, 422)
    try:
        new = table.parse(text)
    except table.ReasonFileError as err:
        return _page(err.chinese, 422)
    version, old = table.active(db.session)
    return render_template("admin/reasons_preview.html", version=version, changes=table.diff(old, new),
                           count=len(new), csv_text=text, filename=request.files.get("file").filename
                           if request.files.get("file") else "", scopes=SCOPE_LABELS)


@blp.post("/reasons/import")
@admin_only
def reasons_import():
    text, problem = _uploaded()
    if problem or not text:
        return _page(problem or "请选择要导入的 CSV 文件", 422)
    before, old = table.active(db.session)
    try:
        version, count = table.import_table(db.session, text, source=(request.form.get("filename") or "console")[:200])
    except table.ReasonFileError as err:
        db.session.rollback()
        return _page(err.chinese, 422)
    changes = table.diff(old, table.parse(text))
    return saved("reasons.import", f"评价原因代码表 第{version}版", {"版本": before, "条数": len(old)},
                 {"版本": version, "条数": count, "新增": len(changes["added"]), "停用": len(changes["removed"]),
                  "修改": len(changes["changed"])},
                 f"已启用评价原因代码表第 {version} 版（{count} 项）", url_for("admin.reasons"))
