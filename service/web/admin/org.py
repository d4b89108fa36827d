"""组织机构: the department tree (add, rename, move), service items per department, and
each department's notification targets with 发送测试消息 — through service/org.py, the
functions ``hcp departments|items`` call."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from sqlalchemy import func, select

from models import Department, ServiceItem
from service import audit, notify
from service.extensions import db
from service.org import (OrgError, add_department, add_item, check_code_free, move_department, notify_snapshot,
                         rename_department, send_test_message, set_notify)
from service.web.admin import admin_only, blp, logged, saved
from service.web.admin.devices import departments_in_scope
from service.web.admin.forms import DepartmentForm, ItemForm, MoveForm, NotifyForm, RenameForm

MESSAGES = {
    ("code", "taken"): "该代码已被使用，请换一个",
    ("parent", "cycle"): "不能移到本部门或其下级部门之下",
    ("webhook", "invalid"): "请填写以 http:// 或 https:// 开头的网址",
    ("webhook", "missing"): "请先保存群机器人地址",
    ("email", "invalid"): "邮箱格式有误",
}


def _tree_choices(empty: str, exclude: Department | None = None) -> list[tuple[str, str]]:
    rows = [(d.code, "　" * (d.path.count("/") - 2) + d.name) for d in departments_in_scope()
            if exclude is None or not d.path.startswith(exclude.path)]
    return [("", empty)] + rows


def _dept(code: str) -> Department:
    dept = db.session.scalar(select(Department).where(Department.code == code))
    if dept is None:
        abort(404)
    return dept


def _by_code(code: str) -> Department | None:
    return db.session.scalar(select(Department).where(Department.code == code)) if code else None


def _refuse(form, err: OrgError) -> None:
    field = getattr(form, err.field, None) or getattr(form, "code")
    message = MESSAGES.get((err.field, err.reason), "填写有误")
    field.errors = [f"{message}：{err.detail}" if err.detail and err.reason == "invalid" else message]


def _tree_page(dept_form=None, item_form=None, status=200):
    dept_form = dept_form or DepartmentForm(formdata=None, prefix="dept")
    item_form = item_form or ItemForm(formdata=None, prefix="item")
    dept_form.parent.choices = _tree_choices("（顶级部门）")
    item_form.department.choices = _tree_choices("请选择部门")
    departments = departments_in_scope()
    items = dict(db.session.execute(select(ServiceItem.department_id, func.count())
                                    .group_by(ServiceItem.department_id)).all())
    return render_template("admin/org.html", departments=departments, items=items, dept_form=dept_form,
                           item_form=item_form), status


@blp.get("/org")
@admin_only
def org():
    return _tree_page()


@blp.post("/org/departments")
@admin_only
def department_add():
    form = DepartmentForm(prefix="dept")
    form.parent.choices = []
    if not form.validate():
        return _tree_page(dept_form=form, status=422)
    parent = _by_code(form.parent.data)
    if form.parent.data and parent is None:
        form.parent.errors = ["请选择列表中的部门"]
        return _tree_page(dept_form=form, status=422)
    try:
        check_code_free(Department, form.code.data.strip())
    except OrgError as err:
        _refuse(form, err)
        return _tree_page(dept_form=form, status=422)
    dept = add_department(form.code.data.strip(), form.name.data.strip(), parent)
    return saved("department.add", f"部门 {dept.code}", None,
                 {"名称": dept.name, "上级": parent.code if parent else None},
                 f"已新增部门「{dept.name}」", url_for("admin.org"))


@blp.post("/org/items")
@admin_only
def item_add():
    form = ItemForm(prefix="item")
    if not form.validate():
        return _tree_page(item_form=form, status=422)
    dept = _by_code(form.department.data)
    if dept is None:
        form.department.errors = ["请选择列表中的部门"]
        return _tree_page(item_form=form, status=422)
    try:
        check_code_free(ServiceItem, form.code.data.strip())
    except OrgError as err:
        _refuse(form, err)
        return _tree_page(item_form=form, status=422)
    item = add_item(form.code.data.strip(), form.name.data.strip(), dept)
    return saved("item.add", f"事项 {item.code}", None, {"名称": item.name, "部门": dept.code},
                 f"已为「{dept.name}」新增服务事项「{item.name}」", url_for("admin.department", code=dept.code))


def _dept_page(dept: Department, rename=None, move=None, notify_form=None, status=200):
    rename = rename or RenameForm(formdata=None, prefix="rename", name=dept.name)
    move = move or MoveForm(formdata=None, prefix="move", parent=dept.parent.code if dept.parent else "")
    move.parent.choices = _tree_choices("（顶级部门）", exclude=dept)
    notify_form = notify_form or NotifyForm(formdata=None, prefix="notify", webhook=dept.notify_webhook or "",
                                            email=dept.notify_email or "")
    items = db.session.scalars(select(ServiceItem).where(ServiceItem.department_id == dept.id)
                               .order_by(ServiceItem.code)).all()
    return render_template("admin/department.html", dept=dept, rename=rename, move=move, notify_form=notify_form,
                           items=items, item_form=_item_form_for(dept),
                           signed=bool(dept.notify_webhook_secret_enc)), status


def _item_form_for(dept: Department) -> ItemForm:
    form = ItemForm(formdata=None, prefix="item", department=dept.code)
    form.department.choices = [(dept.code, dept.name)]
    return form


@blp.get("/org/<code>")
@admin_only
def department(code: str):
    return _dept_page(_dept(code))


@blp.post("/org/<code>/rename")
@admin_only
def department_rename(code: str):
    dept = _dept(code)
    form = RenameForm(prefix="rename")
    if not form.validate():
        return _dept_page(dept, rename=form, status=422)
    before = {"名称": dept.name}
    rename_department(dept, form.name.data.strip())
    return saved("department.rename", f"部门 {dept.code}", *audit.changed(before, {"名称": dept.name}),
                 "已改名", url_for("admin.department", code=code))


@blp.post("/org/<code>/move")
@admin_only
def department_move(code: str):
    dept = _dept(code)
    form = MoveForm(prefix="move")
    form.parent.choices = []
    form.validate()
    parent = _by_code(form.parent.data)
    if form.parent.data and parent is None:
        form.parent.errors = ["请选择列表中的部门"]
        return _dept_page(dept, move=form, status=422)
    before = {"上级": dept.parent.code if dept.parent else None}
    try:
        moved = move_department(db.session, dept, parent)
    except OrgError as err:
        db.session.rollback()
        _refuse(form, err)
        return _dept_page(_dept(code), move=form, status=422)
    dept = _dept(code)
    return saved("department.move", f"部门 {dept.code}",
                 *audit.changed(before, {"上级": parent.code if parent else None}),
                 f"已调整上级部门（{moved} 个部门随之移动）", url_for("admin.department", code=code))


@blp.post("/org/<code>/notify")
@admin_only
def department_notify(code: str):
    dept = _dept(code)
    form = NotifyForm(prefix="notify")
    if not form.validate():
        return _dept_page(dept, notify_form=form, status=422)
    before = notify_snapshot(dept)
    secret = "" if form.clear_secret.data else (form.secret.data or None)
    try:
        set_notify(dept, (form.webhook.data or "").strip(), secret, (form.email.data or "").strip())
    except OrgError as err:
        db.session.rollback()
        _refuse(form, err)
        return _dept_page(_dept(code), notify_form=form, status=422)
    return saved("department.notify", f"部门 {dept.code}", *audit.changed(before, notify_snapshot(dept)),
                 "通知设置已保存", url_for("admin.department", code=code))


@blp.post("/org/<code>/notify/test")
@admin_only
def department_notify_test(code: str):
    dept = _dept(code)
    timeout = current_app.config["HCP_SETTINGS"].notify_timeout
    try:
        answer = send_test_message(dept, timeout)
    except OrgError:
        flash("请先保存群机器人地址", "error")
        return redirect(url_for("admin.department", code=code))
    except notify.SendError as err:
        logged("department.notify_test", f"部门 {dept.code}", None, {"结果": "失败"})
        flash(f"测试消息未送达：{err}", "error")
        return redirect(url_for("admin.department", code=code))
    logged("department.notify_test", f"部门 {dept.code}", None, {"结果": "成功"})
    said = f"（errcode {answer.get('errcode', 0)}，{answer.get('errmsg', '')}）" if answer else ""
    flash(f"测试消息已发送，机器人回复成功{said}", "success")
    return redirect(url_for("admin.department", code=code))
