"""Error pages in Chinese for everything that is not the JSON API (which keeps JSON errors).

``service.errors`` sends every HTTP error outside ``/api/`` here. A server-side error
page (5xx) is drawn without the signed-in top bar: it must not touch the database that
may be the reason for the error.
"""
from __future__ import annotations

from flask import render_template

TITLES = {
    400: "请求有误", 403: "没有权限", 404: "页面不存在", 405: "请求方式不支持", 413: "提交内容过大",
    429: "操作过于频繁", 500: "系统出错了", 503: "系统暂时不可用",
}
MESSAGES = {
    400: "提交的内容有误，请返回上一页检查后重试。",
    403: "您没有权限访问此页面。如需办理，请联系本部门负责人。",
    404: "没有找到该页面或工单（或不在您的管辖范围内）。",
    405: "此页面不支持这种请求方式，请从页面上的按钮或链接进入。",
    413: "提交的内容超过了允许的大小，请删减后重试。",
    429: "操作过于频繁，请稍后再试。",
    500: "系统处理您的请求时出错，已记录在日志中。请稍后重试；如仍有问题，请联系系统管理员。",
    503: "系统暂时无法连接数据库或服务，请稍后重试。",
}


def error_page(code: int, message: str | None = None) -> tuple[str, int]:
    """The HTML error page for ``code``, with the standard message unless one is given."""
    return render_template("error.html", code=code, title=TITLES.get(code, "请求未能完成"),
                           message=message or MESSAGES.get(code, "请求未能完成，请返回上一页重试。"),
                           bare=code >= 500), code
