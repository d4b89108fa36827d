"""``/suspicious``: 疑似刷评审核 — the flags of the suspicious-rating rules, and their decisions.

Server-rendered: the list (by state), a flag's page with its ratings and history, and one
small form (CSRF) per decision. Every decision calls service/suspicious/decisions.py, the
same code as ``POST /api/v1/insights/suspicious/{id}/…``; its typed refusals come back in Chinese.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length, Optional

from models import FLAG_STATE_LABELS, FLAG_STATES, RULE_LABELS
from service.extensions import db
from service.stats.api import VIEWERS
from service.suspicious import decisions, queue

blp = Blueprint("suspicious_page", __name__)

ACTIONS = {"confirm": (decisions.confirm, "确认刷评并剔除"), "dismiss": (decisions.dismiss, "驳回（评价正常）"),
           "restore": (decisions.restore, "撤销确认（恢复统计）")}
REFUSALS = {
    "state": "该线索当前状态不允许此操作，请刷新后查看",
    "four_eyes": "确认人本人不能撤销确认，请由另一位负责人操作",
    "role": "只有科室/部门负责人或局领导可以处理疑似刷评",
    "field": f"备注不能超过{decisions.NOTE_MAX}字",
}
PER_PAGE = 50


class DecisionForm(FlaskForm):
    note = TextAreaField("备注（选填）", validators=[Optional(), Length(max=decisions.NOTE_MAX)])


def _viewer():
    user = current_user._get_current_object()
    if user.role not in VIEWERS:
        abort(403)
    return user


def _flag(user, flag_id: int, lock: bool = False):
    flag = queue.find(db.session, user, flag_id, lock)
    if flag is None:
        abort(404)
    return flag


@blp.get("/suspicious")
@login_required
def flags():
    user = _viewer()
    state = request.args.get("state", "open")
    if state not in FLAG_STATES + ("all",):
        state = "open"
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < len(page) < 7 else 1
    items, total = queue.listing(db.session, user, queue.Query(state=None if state == "all" else state,
                                                               page=page, per_page=PER_PAGE))
    return render_template("suspicious.html", items=items, total=total, state=state, page=page,
                           per_page=PER_PAGE, RULE_LABELS=RULE_LABELS, FLAG_STATE_LABELS=FLAG_STATE_LABELS)


@blp.get("/suspicious/<int:flag_id>")
@login_required
def flag_page(flag_id: int):
    user = _viewer()
    flag = _flag(user, flag_id)
    return _render(user, flag)


def _render(user, flag, status: int = 200):
    flag.counts = queue.counts(db.session, [flag.id]).get(flag.id, {})
    may = {"confirm": flag.state == "open", "dismiss": flag.state == "open",
           "restore": flag.state == "confirmed" and flag.confirmed_by_id != user.id}
    forms = {a: DecisionForm(prefix=a) for a, ok in may.items() if ok and user.role in decisions.DECIDERS}
    return render_template("suspicious_flag.html", flag=flag, ratings=queue.ratings(db.session, flag),
                           review=decisions.needs_invalid_review(db.session, flag), forms=forms, actions=ACTIONS,
                           RULE_LABELS=RULE_LABELS, FLAG_STATE_LABELS=FLAG_STATE_LABELS), status


@blp.post("/suspicious/<int:flag_id>/<action>")
@login_required
def decide(flag_id: int, action: str):
    if action not in ACTIONS:
        abort(404)
    user = _viewer()
    flag = _flag(user, flag_id, lock=True)
    form = DecisionForm(prefix=action)
    if not form.validate():  # CSRF (also checked app-wide) and the note's length
        flash(REFUSALS["field"], "error")
        db.session.rollback()
        return _render(user, flag, 422)
    do, label = ACTIONS[action]
    try:
        done = do(db.session, flag, user, form.note.data)
        db.session.commit()
    except decisions.DecisionError as err:
        db.session.rollback()
        flash(REFUSALS[err.reason], "error")
        return redirect(url_for("suspicious_page.flag_page", flag_id=flag_id))
    if action == "confirm":
        flash(f"已确认：{len(done.excluded)} 条好评已从全部统计中剔除", "success")
        if done.needs_invalid_review:
            flash(f"其中 {len(done.needs_invalid_review)} 条差评未剔除，须在工单中走无效差评审核"
                  "（承办人申请无效差评 → 负责人审核通过）", "warning")
    elif action == "restore":
        flash(f"已撤销确认：{len(done.restored)} 条评价恢复计入统计", "success")
    else:
        flash(f"已完成：{label}", "success")
    return redirect(url_for("suspicious_page.flag_page", flag_id=flag_id))
