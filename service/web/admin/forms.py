"""The console's forms (Flask-WTF: each carries its CSRF token). Messages are Chinese and
shown beside their field; a refused form is drawn again with what was typed.

The forms check the shape of the input only; whether a change is allowed (a code already
taken, a move under its own subtree) is decided by the domain function the view calls.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from limits import parse
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

CODE = Regexp(r"^[A-Za-z0-9_.-]+$", message="只能包含字母、数字、下划线、点和短横线")


def required(what: str):
    return DataRequired(message=f"请填写{what}")


def chosen(what: str):
    return DataRequired(message=f"请选择{what}")


def rate(form, field):
    if field.data:
        try:
            parse(field.data)
        except ValueError:
            raise ValidationError("限速格式应如 5/minute、600/hour") from None


class DeviceForm(FlaskForm):
    name = StringField("设备名称", validators=[required("设备名称"), Length(max=200, message="不能超过200字")])
    department = SelectField("所属部门", validators=[chosen("所属部门")], validate_choice=False)
    channel = SelectField("评价渠道", validators=[chosen("评价渠道")], validate_choice=False)
    window = StringField("窗口号", validators=[Optional(), Length(max=64, message="不能超过64字")])
    rate_limit = StringField("限速（选填）", validators=[Optional(), Length(max=64, message="不能超过64字"), rate])
