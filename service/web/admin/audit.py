"""操作日志: every console change, newest first (service/audit.py records them)."""
from __future__ import annotations

from flask import render_template, request

from service import audit
from service.extensions import db
from service.web.admin import admin_only, blp

PER_PAGE = 50


@blp.get("/audit")
@admin_only
def audit_log():
    actor = (request.args.get("actor") or "").strip()[:64] or None
    action = request.args.get("action") or None
    if action not in audit.ACTION_LABELS:
        action = None
    page = min(max(1, request.args.get("page", 1, type=int) or 1), 100_000)
    rows, total = audit.entries(db.session, actor=actor, action=action, page=page, per_page=PER_PAGE)
    return render_template("admin/audit.html", rows=rows, total=total, page=page,
                           pages=max(1, -(-total // PER_PAGE)), actor=actor or "", action=action or "",
                           labels=audit.ACTION_LABELS)
