"""人员: staff with role, department, e-mail, enabled and locked; add with a one-time
set-password link, disable/enable, unlock, a new link, move to another department —
through service/staff.py (and service/auth/api.py's sign-in lock)."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from models import ROLE_LABELS, ROLES, Department, User
from service import audit, staff
from service.auth.api import is_locked, unlock
from service.extensions import db
from service.org import OrgError, emails
from service.web.admin import admin_only, blp, logged, saved, user
from service.web.admin.devices import department_choices
from service.web.admin.forms import MoveUserForm, UserForm

NO_STORE = {"Cache-Control": "no-store"}


def _page(form: UserForm | None = None, status: int = 200):
    form = form or UserForm(formdata=None, prefix="user")
    form.role.choices = [("", "请选择角色")] + [(r, ROLE_LABELS[r]) for r in ROLES]
    form.department.choices = department_choices()
    users = db.session.scalars(select(User).options(joinedload(User.department)).order_by(User.username)).all()
    move = MoveUserForm(formdata=None, prefix="move")
    move.department.choices = department_choices()
    return render_template("admin/staff.html", users=users, form=form, move=move,
                           locked={u.username for u in users if is_locked(u.username)}), status


def _user(username: str) -> User:
    u = db.session.scalar(select(User).where(User.username == username))
    if u is None:
        abort(404)
    return u


def _link_page(u: User, raw: str, title: str):
    url = f"{current_app.config['HCP_SETTINGS'].public_url}{url_for('web_auth.set_password', token=raw)}"
    return render_template("admin/password_link.html", person=u, url=url, title=title,
                           hours=staff.LINK_HOURS), 200, NO_STORE


@blp.get("/staff")
@admin_only
def staff_list():
    return _page()


@blp.post("/staff")
@admin_only
def staff_add():
    form = UserForm(prefix="user")
    if not form.validate():
        return _page(form, 422)
    if form.role.data not in ROLES:
        form.role.errors = ["请选择列表中的角色"]
        return _page(form, 422)
    dept = db.session.scalar(select(Department).where(Department.code == form.department.data))
    if dept is None:
        form.department.errors = ["请选择列表中的部门"]
        return _page(form, 422)
    try:
        email = emails((form.email.data or "").strip()) or None
    except OrgError as err:
        form.email.errors = [f"邮箱格式有误：{err.detail}"]
        return _page(form, 422)
    try:
        u, raw = staff.add_user_with_link(db.session, form.username.data.strip(), form.role.data, dept,
                                          (form.display_name.data or "").strip() or None, email)
    except staff.StaffError:
        form.username.errors = ["该用户名已被使用"]
        return _page(form, 422)
    logged("user.add", f"用户 {u.username}", None, staff.snapshot(u))
    return _link_page(u, raw, "用户已添加")


@blp.post("/staff/<username>/link")
@admin_only
def staff_link(username: str):
    u = _user(username)
    raw = staff.issue_link(db.session, u)
    logged("user.password_link", f"用户 {u.username}")
    return _link_page(u, raw, "设置密码链接")


def _set_active(username: str, active: bool):
    u = _user(username)
    if u.id == user().id and not active:
        flash("不能停用自己的账户", "error")
        return redirect(url_for("admin.staff_list"))
    before = staff.snapshot(u)
    staff.set_active(u, active)
    return saved("user.enable" if active else "user.disable", f"用户 {u.username}",
                 *audit.changed(before, staff.snapshot(u)),
                 f"用户 {u.username} 已{'启用' if active else '停用（已登出所有设备）'}", url_for("admin.staff_list"))


@blp.post("/staff/<username>/disable")
@admin_only
def staff_disable(username: str):
    return _set_active(username, False)


@blp.post("/staff/<username>/enable")
@admin_only
def staff_enable(username: str):
    return _set_active(username, True)


@blp.post("/staff/<username>/unlock")
@admin_only
def staff_unlock(username: str):
    u = _user(username)
    unlock(u.username)
    return saved("user.unlock", f"用户 {u.username}", {"锁定": True}, {"锁定": False},
                 f"用户 {u.username} 已解除锁定", url_for("admin.staff_list"))


@blp.post("/staff/<username>/move")
@admin_only
def staff_move(username: str):
    u = _user(username)
    form = MoveUserForm(prefix="move")
    form.validate()
    dept = db.session.scalar(select(Department).where(Department.code == (form.department.data or "")))
    if dept is None:
        flash("请选择要调往的部门", "error")
        return redirect(url_for("admin.staff_list"))
    before = staff.snapshot(u)
    returned = staff.move_user(db.session, u, dept, user())
    return saved("user.move", f"用户 {u.username}", *staff.moved(before, u, returned),
                 f"用户 {u.username} 已调往「{dept.name}」" +
                 (f"；{len(returned)} 件在办工单不在新部门范围内，已退回待分派" if returned else ""),
                 url_for("admin.staff_list"))
