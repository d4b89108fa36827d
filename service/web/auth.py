"""Web sign-in with Flask-Login sessions; forms carry a CSRF token (Flask-WTF).

The signed session cookie alone is not enough: it carries a session secret whose row
(api_tokens, like a staff token) must still be live — revoked on sign-out and when the
user is disabled, expired after HCP_TOKEN_HOURS. A cookie copied before sign-out is dead.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from models.types import utcnow
from service.auth.access import SESSION_PREFIX, issue_token, live_token
from service.auth.api import check_login
from service.extensions import db

blp = Blueprint("web_auth", __name__)
SESSION_KEY = "hcp_session"


def load_user(user_id: str):
    """Flask-Login's user loader: the session's user while its secret's row is live."""
    raw = session.get(SESSION_KEY)
    token = live_token(raw) if isinstance(raw, str) and raw.startswith(SESSION_PREFIX) else None
    if token is None or str(token.user_id) != user_id:
        return None
    return token.user


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired(), Length(max=256)])


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("web.index")


@blp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = check_login(form.username.data, form.password.data, request.remote_addr)
        if user is not None:
            raw, _ = issue_token(user, prefix=SESSION_PREFIX)
            db.session.commit()
            session[SESSION_KEY] = raw
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("用户名或密码错误，或账户已被暂时锁定", "error")
    return render_template("login.html", form=form), (401 if request.method == "POST" else 200)


@blp.post("/logout")
@login_required
def logout():
    token = live_token(session.get(SESSION_KEY, ""))
    if token is not None:
        token.revoked_at = utcnow()
        db.session.commit()
    logout_user()
    session.pop(SESSION_KEY, None)
    return redirect(url_for("web_auth.login"))


@blp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """The one-time link an admin gave a new (or locked-out) user: choose a password, once."""
    from service import audit, staff
    from service.web.admin.forms import SetPasswordForm

    link = staff.live_link(db.session, token) if len(token) <= 100 else None
    if link is None:
        return render_template("set_password.html", form=None), 404
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            person = staff.set_password_by_link(db.session, token, form.password.data)
        except staff.StaffError:
            db.session.rollback()
            return render_template("set_password.html", form=None), 404
        audit.record(db.session, person, "user.password_set", f"用户 {person.username}")
        db.session.commit()
        flash("密码已设置，请使用新密码登录", "success")
        return redirect(url_for("web_auth.login"))
    return render_template("set_password.html", form=form, person=link.user), (422 if form.errors else 200)
