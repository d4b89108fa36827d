"""Staff pages: 我的工单 worklist, the case page with its action forms, the supervisor queue.

Views are thin: they check login and scope, call the same domain functions the API
calls (``workflow.apply``, ``actions_for``, ``reveal_rater``) and commit once per request.
A case outside the user's department subtree is a 404, so its existence is not revealed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   send_from_directory, url_for)
from flask_login import current_user, login_required
from marshmallow import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError
from wtforms import SelectChoice

from models import (CHANNEL_LABELS, LEVEL_LABELS, OPEN_STATUSES, OUTCOME_LABELS, ROLE_LABELS, STATUS_LABELS, Case,
                    Department, ServiceItem, User)
from models.clock import SHANGHAI, local_date
from models.types import utcnow
from service.auth.access import scope_filter
from service.cases import batch as batch_actions, query as case_query, warnings, workflow
from service.cases.warnings import Cards, next_due_sql
from service.cases.deadlines import unit_label
from service.cases.privacy_rules import may_reveal, reveal_rater
from service.cases.schemas import CaseFilterArgs
from service.cases.workflow import ACTION_LABELS, ActionError
from service.extensions import db
from service.web.forms import FORMS, HINTS
from service.web.labels import FIELD_LABELS, TAG_LABELS

blp = Blueprint("web", __name__)

PER_PAGE = 50
QUEUE_LIMIT = 200
REVIEW_STATUSES = ("invalid_review", "explain_review", "extension_review")
QUEUE_ROLES = ("supervisor", "manager", "admin")


# ---------------------------------------------------------------- deadlines as shown

DEADLINE_KINDS = {"callback": "回访", "close": "办结"}


@dataclass
class Due:
    """How a case's next deadline is shown; the deadline and its card come from ``warnings.Cards``."""

    deadline: warnings.Deadline

    @property
    def kind(self) -> str | None:
        return DEADLINE_KINDS.get(self.deadline.name)

    @property
    def day(self) -> date | None:
        return self.deadline.day

    @property
    def badge(self) -> str | None:
        return self.deadline.level

    @property
    def is_overdue(self) -> bool:
        return self.deadline.is_overdue

    @property
    def hours_left(self) -> int | None:
        """On the due day itself: whole hours (rounded up) to its end, Asia/Shanghai midnight."""
        d, now = self.deadline, utcnow()
        if d.day is None or d.is_overdue or d.day != local_date(now):
            return None
        end = datetime.combine(d.day + timedelta(days=1), time(), SHANGHAI)
        return max(0, math.ceil((end - now).total_seconds() / 3600))

    @property
    def text(self) -> str:
        d = self.deadline
        if d.day is None:
            return ""
        if d.is_overdue:
            return f"已逾期{d.overdue}{d.unit}" if d.overdue else "已逾期"
        if self.hours_left is not None:
            return f"今日到期，剩余{self.hours_left}小时"
        return "今日到期" if d.left == 0 else f"剩余{d.left}{d.unit}"


# ---------------------------------------------------------------- helpers

def _user() -> User:
    return current_user._get_current_object()


def _scoped_case(case_id: int, lock: bool = False) -> Case:
    """The case if the user's scope covers it, else 404. ``lock`` takes the row lock
    (PostgreSQL), so two people acting at once are applied one after the other."""
    case = batch_actions.find_case(db.session, _user(), case_id, lock)
    if case is None:
        abort(404)
    return case


def _subtree_departments(user: User) -> list[Department]:
    return list(db.session.scalars(
        select(Department).where(scope_filter(user, Department.id)).order_by(Department.path)))


def _handlers_for(case: Case) -> list[SelectChoice]:
    """(username, label) of the active staff an assign may name: the case department's subtree."""
    return _handlers_under(case.department.path)


def _handlers_under(path: str) -> list[SelectChoice]:
    """(username, label) of the active handling staff of the department at ``path`` and below,
    with their open cases; whom an assign may really name is decided by the workflow."""
    open_count = (select(func.count(Case.id))
                  .where(Case.assignee_id == User.id, Case.status.in_(OPEN_STATUSES))
                  .correlate(User).scalar_subquery())
    rows = db.session.execute(
        select(User, Department.name, open_count)
        .join(Department, User.department_id == Department.id)
        .where(User.active.is_(True), User.role.in_(workflow.HANDLING), Department.path.startswith(path))
        .order_by(User.role, User.username))
    return [SelectChoice(u.username, f"{u.display_name or u.username}（{u.username}，{dept}，在办{n}件）")
            for u, dept, n in rows]


def friendly(err: ActionError, case: Case, action: str) -> str:
    """An ActionError's typed reason in the words a handler understands."""
    label = ACTION_LABELS.get(action, action)
    if err.reason == "anonymous":
        return "这是匿名评价，没有评价人信息可查看"
    if err.reason == "stale":
        return "该工单刚被其他人更新，请查看最新状态后再操作"
    if err.reason == "state":
        if err.allowed == []:
            return "每件工单只能延期一次"
        allowed = [ACTION_LABELS[a] for a in (err.allowed or [])]
        msg = f"工单当前状态为「{STATUS_LABELS[case.status]}」，不能{label}"
        return msg + (f"；当前可进行：{'、'.join(allowed)}" if allowed else "")
    if err.reason == "four_eyes":
        return "不能审核自己提交的申请，请由其他负责人审核"
    if err.reason == "not_assignee":
        return "只有本工单的承办人可以办理"
    if err.reason == "role":
        if action == "reveal":
            return "只有本工单的承办人和所属部门负责人可以查看评价人电话"
        return f"{ROLE_LABELS.get(_user().role, _user().role)}不能{label}"
    field = (err.field or "").rsplit(".", 1)[-1]  # "measures.cause" → "cause"
    if field == "assignee":
        return "请选择本部门在岗的承办人"
    if field == "working_days":
        lo, hi = workflow.EXTENSION_DAYS
        return f"延期天数须为{lo}到{hi}{unit_label()}"
    if field in ("contacted", "satisfied"):
        return f"请选择{FIELD_LABELS[field]}"
    if field in FIELD_LABELS:
        return f"请填写{FIELD_LABELS[field]}"
    return f"{label}未能完成：{err.message}"


# Who acts next on a case in each state, for a viewer who cannot (SPEC §9).
WAITING_FOR = {
    "unassigned": "待科室负责人分派",
    "assigned": "待承办人{assignee}回访核实",
    "rectifying": "待承办人{assignee}整改",
    "extension_review": "待科室负责人审核延期申请",
    "invalid_review": "待科室负责人审核无效差评申请",
    "explain_review": "待科室负责人审核解释说明",
    "feedback": "待承办人{assignee}反馈办结",
    "closed": "已办结；如需重新办理，可由科室负责人或管理人员重新打开",
}


def waiting_for(case: Case, user: User) -> str:
    """Who can act on ``case`` now, said to a viewer who has no action of their own."""
    if case.claimed_by_id == user.id and user.role == "supervisor" and case.status in REVIEW_STATUSES:
        return "您提交的申请需由其他负责人审核"  # four-eyes
    who = case.assignee.display_name or case.assignee.username if case.assignee else ""
    return WAITING_FOR[case.status].format(assignee=f"（{who}）" if who else "")


def _action_forms(case: Case, user: User, posted: dict | None = None) -> dict:
    """One form per action the user may take now; ``posted`` keeps a refused form's input."""
    forms = {}
    for action in workflow.actions_for(case, user):
        form = (posted or {}).get(action) or FORMS[action](formdata=None, prefix=action)
        form.version.data = str(case.version)
        if action == "assign":
            form.assignee.choices = [SelectChoice("", "请选择承办人")] + _handlers_for(case)
        forms[action] = form
    return forms


def _render_case(case: Case, posted: dict | None = None, revealed: dict | None = None, status: int = 200):
    user = _user()
    history = [e for e in case.history]
    page = render_template(
        "case.html", case=case, rating=case.rating, due=Due(Cards.now(db.session).of(case)),
        forms=_action_forms(case, user, posted), hints=HINTS, history=history,
        waiting_for=waiting_for(case, user),
        can_reveal=case.rating.real_name and may_reveal(db.session, case, user), revealed=revealed)
    return page, status, ({"Cache-Control": "no-store"} if revealed else {})


# ---------------------------------------------------------------- template helpers

@blp.app_template_filter("localtime")
def localtime(moment) -> str:
    """An aware datetime as Asia/Shanghai wall-clock time."""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else ""


@blp.app_context_processor
def _labels():
    return {"STATUS_LABELS": STATUS_LABELS, "LEVEL_LABELS": LEVEL_LABELS, "ACTION_LABELS": ACTION_LABELS,
            "OUTCOME_LABELS": OUTCOME_LABELS, "CHANNEL_LABELS": CHANNEL_LABELS, "TAG_LABELS": TAG_LABELS,
            "ROLE_LABELS": ROLE_LABELS, "WARNING_LABELS": warnings.WARNING_LABELS, "QUEUE_ROLES": QUEUE_ROLES,
            "DEADLINE_UNIT": unit_label()}


# ---------------------------------------------------------------- pages

@blp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page links; the same icon as favicon.svg."""
    return send_from_directory(current_app.static_folder, "favicon.ico", max_age=86400)


@blp.get("/")
def index():
    """Signed-in staff start at 我的工单; everyone else at the sign-in page."""
    if current_user.is_authenticated:
        return redirect(url_for("web.worklist"))
    return redirect(url_for("web_auth.login"))


# The list's filters, as the page names them when one is refused.
FILTER_LABELS = {"q": "搜索", "status": "状态", "department": "部门", "warning": "预警", "overdue": "只看已逾期",
                 "rated_from": "评价日期", "rated_to": "评价日期", "item": "服务事项", "channel": "渠道"}


def _list_filters(args) -> tuple[dict, list[str]]:
    """The list's query arguments, checked by the API list's own schema (the same filters,
    the same limits); a refused one is dropped and named, so a bad link still shows a list."""
    raw = {k: args[k].strip() for k in FILTER_LABELS if (args.get(k) or "").strip()}
    raw.setdefault("status", "open")  # 未办结 unless asked otherwise
    if raw["status"] == "all":
        del raw["status"]
    if raw.get("warning") == "overdue":  # older links: 已逾期 was a warning choice, a passed deadline
        raw["warning"] = "red"
    try:
        return CaseFilterArgs().load(raw), []
    except ValidationError as err:
        bad = sorted(err.messages)
        loaded = {k: v for k, v in (err.valid_data or {}).items() if k not in bad}
        return loaded, sorted({FILTER_LABELS.get(k, k) for k in bad})


@dataclass
class Batch:
    """The supervisors' batch form on the list: the actions it offers, the handlers to assign."""

    actions: tuple[str, ...]
    handlers: list[SelectChoice]


def _batch_for(user: User) -> Batch | None:
    if user.role not in QUEUE_ROLES:
        return None
    path = "/" if user.role == "admin" else user.department.path
    return Batch(batch_actions.ACTIONS, _handlers_under(path))


@blp.get("/cases")
@login_required
def worklist():
    """我的工单: search and filters through the same query and the same argument schema as
    the API list, cases by next deadline. Handlers see their own; others their subtree."""
    user = _user()
    args = request.args
    scope = "mine" if user.role == "handler" else args.get("scope", "dept")
    # Clamped: a huge ?page= made an OFFSET beyond bigint and a 500.
    page = min(max(1, args.get("page", 1, type=int) or 1), 1_000_000)
    departments = _subtree_departments(user)
    loaded, refused = _list_filters(args)
    if loaded.get("department") and not any(d.code == loaded["department"] for d in departments):
        loaded.pop("department")
        refused.append(FILTER_LABELS["department"])
    if refused:
        flash("筛选条件有误，已忽略：" + "、".join(refused), "error")
    filters = case_query.CaseFilters.from_args({**loaded, "assignee": "me" if scope == "mine" else None})
    cards = Cards.now(db.session)
    try:
        stmt = case_query.case_select(db.session, user, filters, cards)
    except case_query.QueryError as err:  # an item code that does not exist
        flash(f"筛选条件有误，已忽略：{FILTER_LABELS.get(err.field, err.field)}", "error")
        setattr(filters, err.field, None)
        stmt = case_query.case_select(db.session, user, filters, cards)
    rows, total = case_query.page(db.session, case_query.ordered(stmt), page, PER_PAGE)
    items = [(c, Due(cards.of(c))) for c in rows]
    pages = max(1, -(-total // PER_PAGE))
    shown = {k: (v.isoformat() if isinstance(v, date) else ("true" if v is True else v)) for k, v in loaded.items()}
    shown.update(scope=scope, status=shown.get("status", "all"))
    items_in_scope = db.session.scalars(select(ServiceItem).where(scope_filter(user, ServiceItem.department_id))
                                        .order_by(ServiceItem.name)).all()
    return render_template("cases.html", items=items, total=total, page=page, pages=pages,
                           departments=departments, filters=shown, items_in_scope=items_in_scope,
                           batch=_batch_for(user))


@blp.post("/cases/batch")
@login_required
def batch():
    """One action (assign, approve, reject) on the cases ticked in the list, each taken or
    refused on its own by ``service.cases.batch``; the refusals come back in Chinese."""
    user = _user()
    if _batch_for(user) is None:
        abort(403)
    action = request.form.get("action", "")
    if action not in batch_actions.ACTIONS:
        abort(400)
    # At most a page's worth in practice; the API's own limit (500) bounds a forged post.
    ids = sorted({int(i) for i in request.form.getlist("ids") if i.isdigit() and len(i) <= 18})[:500]
    if not ids:
        flash("请先勾选要处理的工单", "error")
        return redirect(_back())
    data = {"note": request.form.get("note", "").strip()[:2000] or None}
    if action == "assign":
        data["assignee"] = request.form.get("assignee", "")
    outcomes = batch_actions.apply_each(db.session, user, ids, action, data)
    db.session.commit()
    done = [o.id for o in outcomes if o.done]
    if done:
        flash(f"{ACTION_LABELS[action]}：{len(done)} 件已完成（" + "、".join(f"#{i}" for i in done) + "）", "success")
    for o in outcomes:
        if not o.done:
            message = ("没有找到该工单（或不在您的管辖范围内）" if o.case is None
                       else friendly(o.error, o.case, action))
            flash(f"#{o.id}：{message}", "error")
    return redirect(_back())


def _back() -> str:
    """The list the batch form was posted from (a same-site path only)."""
    back = request.form.get("back", "")
    return back if back.startswith("/cases") and not back.startswith("//") else url_for("web.worklist")


@blp.get("/cases/<int:case_id>")
@login_required
def case_page(case_id: int):
    """The rating, masked rater, deadlines, history and one form per allowed action."""
    return _render_case(_scoped_case(case_id))


@blp.post("/cases/<int:case_id>/actions/<action>")
@login_required
def act(case_id: int, action: str):
    """Apply one action through workflow.apply; refusals come back as a flash in Chinese."""
    if action not in FORMS:
        abort(404)
    user = _user()
    case = _scoped_case(case_id, lock=True)
    form = FORMS[action](prefix=action)
    if action == "assign":
        form.assignee.choices = []
    if not form.validate():  # CSRF (also checked app-wide) and field lengths
        flash("提交内容有误：" + "；".join(f"{form[f].label.text}不能超过2000字"
                                           for f in form.errors if f in form._fields), "error")
        return _render_case(case, {action: form}, status=422)
    if form.version.data != str(case.version):
        db.session.rollback()
        flash("该工单刚被其他人更新，请查看最新状态后再操作", "error")
        return redirect(url_for("web.case_page", case_id=case_id))
    try:
        workflow.apply(db.session, case, user, action, form.to_data())
        db.session.commit()
    except ActionError as err:
        db.session.rollback()
        case = _scoped_case(case_id)
        flash(friendly(err, case, action), "error")
        return _render_case(case, {action: form}, status=err.status)
    except StaleDataError:  # another request changed the case between our read and write
        db.session.rollback()
        flash("该工单刚被其他人更新，请查看最新状态后再操作", "error")
        return redirect(url_for("web.case_page", case_id=case_id))
    flash(f"已完成：{ACTION_LABELS[action]}（当前状态：{STATUS_LABELS[case.status]}）", "success")
    return redirect(url_for("web.case_page", case_id=case_id))


@blp.post("/cases/<int:case_id>/reveal")
@login_required
def reveal(case_id: int):
    """Show the rater's name and phone once, in this response only; the reveal is recorded."""
    user = _user()
    case = _scoped_case(case_id)
    try:
        rater = reveal_rater(db.session, case, user)
        db.session.commit()
    except ActionError as err:
        db.session.rollback()
        flash(friendly(err, case, "reveal"), "error")
        return redirect(url_for("web.case_page", case_id=case_id))
    return _render_case(case, revealed=rater)


@blp.get("/queue")
@login_required
def queue():
    """Supervisor queue: claims awaiting approval, unassigned cases, overdue cases."""
    user = _user()
    if user.role not in QUEUE_ROLES:
        abort(403)
    cards = Cards.now(db.session)
    next_due = next_due_sql()
    base = (select(Case).where(scope_filter(user, Case.department_id))
            .options(selectinload(Case.rating), selectinload(Case.department), selectinload(Case.assignee)))

    def section(condition, order):
        rows = db.session.scalars(base.where(condition).order_by(*order).limit(QUEUE_LIMIT)).all()
        count = db.session.scalar(select(func.count()).select_from(base.where(condition).subquery()))
        return {"items": [(c, Due(cards.of(c))) for c in rows], "total": count}

    overdue = cards.where("red")
    sections = [
        ("claims", "待审核的申请（无效差评、解释说明、延期）",
         section(Case.status.in_(REVIEW_STATUSES), (Case.updated_at, Case.id))),
        ("unassigned", "待分派工单", section(Case.status == "unassigned", (next_due, Case.id))),
        ("overdue", "红牌（已逾期）工单", section(overdue, (next_due, Case.id))),
    ]
    return render_template("queue.html", sections=sections, limit=QUEUE_LIMIT)
