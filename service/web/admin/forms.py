"""The console's forms (Flask-WTF: each carries its CSRF token). Messages are Chinese and
shown beside their field; a refused form is drawn again with what was typed.

The forms check the shape of the input only; whether a change is allowed (a code already
taken, a move under its own subtree) is decided by the domain function the view calls.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from limits import parse
from wtforms import BooleanField, DateField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp, ValidationError

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


class DepartmentForm(FlaskForm):
    code = StringField("部门代码", validators=[required("部门代码"), Length(max=64, message="不能超过64字"), CODE])
    name = StringField("部门名称", validators=[required("部门名称"), Length(max=200, message="不能超过200字")])
    parent = SelectField("上级部门", validate_choice=False)


class ItemForm(FlaskForm):
    code = StringField("事项代码", validators=[required("事项代码"), Length(max=64, message="不能超过64字"), CODE])
    name = StringField("事项名称", validators=[required("事项名称"), Length(max=200, message="不能超过200字")])
    department = SelectField("所属部门", validators=[chosen("所属部门")], validate_choice=False)


class RenameForm(FlaskForm):
    name = StringField("新名称", validators=[required("新名称"), Length(max=200, message="不能超过200字")])


class MoveForm(FlaskForm):
    parent = SelectField("新的上级部门", validate_choice=False)


class NotifyForm(FlaskForm):
    webhook = StringField("群机器人地址（企业微信/钉钉）",
                          validators=[Optional(), Length(max=500, message="不能超过500字")])
    secret = PasswordField("加签密钥（SEC…，留空则不变）",
                           validators=[Optional(), Length(max=200, message="不能超过200字")])
    clear_secret = BooleanField("清除加签密钥")
    email = StringField("部门邮箱（多个用逗号分隔）", validators=[Optional(), Length(max=500, message="不能超过500字")])


class UserForm(FlaskForm):
    username = StringField("用户名", validators=[required("用户名"), Length(max=64, message="不能超过64字"), CODE])
    display_name = StringField("姓名", validators=[Optional(), Length(max=100, message="不能超过100字")])
    role = SelectField("角色", validators=[chosen("角色")], validate_choice=False)
    department = SelectField("所属部门", validators=[chosen("所属部门")], validate_choice=False)
    email = StringField("邮箱（选填，接收提醒）", validators=[Optional(), Length(max=200, message="不能超过200字")])


class MoveUserForm(FlaskForm):
    department = SelectField("调往部门", validators=[chosen("部门")], validate_choice=False)


class SetPasswordForm(FlaskForm):
    password = PasswordField("新密码", validators=[required("新密码"), Length(min=8, max=256, message="密码至少8位")])
    confirm = PasswordField("再次输入新密码", validators=[required("确认密码")])

    def validate_confirm(self, field):
        if field.data != self.password.data:
            raise ValidationError("两次输入的密码不一致")


class Day(DateField):
    """A date typed as 2027-01-01; anything else is refused in Chinese, what was typed kept."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("日期格式应如 2027-01-01") from None


class CalendarForm(FlaskForm):
    # InputRequired, not DataRequired: the latter would replace "日期格式应如…" for a typed bad date.
    day = Day("日期", validators=[InputRequired(message="请填写日期，如 2027-01-01")])
    kind = SelectField("类型", validators=[chosen("类型")], validate_choice=False)
    note = StringField("说明（选填，如 元旦、国庆调休）",
                       validators=[Optional(), Length(max=200, message="不能超过200字")])
