"""Web sign-in with Flask-Login sessions; forms carry a CSRF token (Flask-WTF)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from service.auth.api import check_login
from service.extensions import db

blp = Blueprint("web_auth", __name__)


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
        user = check_login(form.username.data, form.password.data)
        db.session.commit()  # keeps the failure count and lockout
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("用户名或密码错误，或账户已被暂时锁定", "error")
    return render_template("login.html", form=form), (401 if request.method == "POST" else 200)


@blp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("web_auth.login"))
