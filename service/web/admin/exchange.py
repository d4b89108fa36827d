"""数据上报: the outbox's counts, the reasons records are refused or held, and requeueing
(the same domain functions as ``hcp exchange status|requeue``)."""
from __future__ import annotations

from flask import current_app, render_template, request, url_for

from models import OUTBOX_STATE_LABELS, OUTBOX_STATES
from service.exchange import operations
from service.extensions import db
from service.notify import redact_url
from service.web.admin import admin_only, blp, saved


def _age(seconds: float | None) -> str:
    """An age in Chinese: 3天4小时, 2小时5分, 7分钟."""
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}天{hours}小时"
    if hours:
        return f"{hours}小时{minutes}分"
    return f"{minutes}分钟"


@blp.get("/exchange")
@admin_only
def exchange():
    settings = current_app.config["HCP_SETTINGS"]
    state = operations.status(db.session)
    return render_template("admin/exchange.html", state=state, states=OUTBOX_STATES, labels=OUTBOX_STATE_LABELS,
                           oldest=_age(state.oldest_pending_seconds), profile=settings.exchange_profile,
                           target=redact_url(settings.exchange_url) if settings.exchange_url else None,
                           area_code=settings.area_code)


@blp.post("/exchange/requeue")
@admin_only
def exchange_requeue():
    rejected = request.form.get("rejected") == "1"
    changed = operations.requeue(db.session, rejected=rejected)
    return saved("exchange.requeue", "上报队列", None, operations.requeue_entry(rejected, changed),
                 f"已将 {changed} 条记录重新排入上报队列", url_for("admin.exchange"))
