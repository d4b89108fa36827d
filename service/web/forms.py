"""One small form per case action (Flask-WTF, so each carries its CSRF token).

The forms only collect and shape the input; what makes an action valid (non-empty
reason, cause and measures, a handler of the department) is decided by
``service.cases.workflow.apply``, the same code the API calls.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, RadioField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import Length, Optional

TEXT = [Optional(), Length(max=2000)]


class ActionForm(FlaskForm):
    """Fields every action form has: the case version it was shown at, and a note."""

    version = HiddenField()
    note = TextAreaField("备注（选填）", validators=TEXT)

    def to_data(self) -> dict:
        """The ``data`` argument for ``workflow.apply``."""
        return {"note": (self.note.data or "").strip() or None}


class AssignForm(ActionForm):
    # Choices are filled per case; membership is checked by workflow.apply, not here.
    assignee = SelectField("承办人", choices=[], validate_choice=False)

    def to_data(self) -> dict:
        return {**super().to_data(), "assignee": self.assignee.data or ""}


class VerifyForm(ActionForm):
    contacted = BooleanField("已电话联系上评价人")

    def to_data(self) -> dict:
        return {**super().to_data(), "contacted": bool(self.contacted.data)}


class ReasonForm(ActionForm):
    """claim_invalid, propose_explain and reopen: a reason is required."""

    reason = TextAreaField("理由", validators=TEXT)

    def to_data(self) -> dict:
        return {**super().to_data(), "reason": self.reason.data or ""}


class RectifyForm(ActionForm):
    cause = TextAreaField("原因", validators=TEXT)
    measure = TextAreaField("整改措施", validators=TEXT)

    def to_data(self) -> dict:
        return {**super().to_data(),
                "measures": {"cause": self.cause.data or "", "action": self.measure.data or ""}}


class ExtensionForm(ActionForm):
    """request_extension: working days (checked 1–15 by the workflow) and a reason."""

    working_days = IntegerField("延期工作日数", validators=[Optional()])
    reason = TextAreaField("延期理由", validators=TEXT)

    def to_data(self) -> dict:
        return {**super().to_data(), "working_days": self.working_days.data, "reason": self.reason.data or ""}


SATISFIED = {"yes": True, "no": False, "unknown": None}


class FeedbackForm(ActionForm):
    contacted = BooleanField("已将整改结果告知评价人")
    satisfied = RadioField("评价人是否满意", default="unknown",
                           choices=[SelectChoice("yes", "满意"), SelectChoice("no", "不满意"),
                                    SelectChoice("unknown", "未表态")])

    def to_data(self) -> dict:
        return {**super().to_data(), "contacted": bool(self.contacted.data),
                "satisfied": SATISFIED.get(self.satisfied.data)}


FORMS: dict[str, type[ActionForm]] = {
    "assign": AssignForm,
    "verify": VerifyForm,
    "claim_invalid": ReasonForm,
    "propose_explain": ReasonForm,
    "request_extension": ExtensionForm,
    "approve": ActionForm,
    "reject": ActionForm,
    "rectify": RectifyForm,
    "feedback": FeedbackForm,
    "reopen": ReasonForm,
}

# What each action's form says above its fields, in the order the page shows them.
HINTS = {
    "assign": "把工单分派给本部门的承办人。",
    "verify": "已回访评价人、核实情况后确认为有效差评，进入整改。立行立改：核实后立即提交整改。",
    "claim_invalid": "评价人误评或恶意差评：说明理由，提交负责人审核。",
    "propose_explain": "无整改依据（无法律依据、超出职权等）：说明理由，提交负责人审核。",
    "request_extension": "整改需要更多时间：填写延期的工作日数（1–15）和理由，提交负责人审核；每件工单只能延期一次。",
    "approve": "同意承办人的申请。",
    "reject": "驳回申请，工单回到整改中。",
    "rectify": "填写差评原因和已采取的整改措施。",
    "feedback": "把整改或解释结果告知评价人，并记录其是否满意，工单办结。",
    "reopen": "重新打开已办结的工单，回到整改中。",
}
