"""The 操作日志: every change made in the admin console is recorded here, in the same
transaction as the change itself (so a change that fails leaves no entry, and no change
goes unrecorded).

Entries name the actor by username only; callers pass the changed fields, never a key,
password, secret or anything about a rater.
"""
from __future__ import annotations

import getpass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditEntry, User
from models.types import utcnow

# What each action code means on the 操作日志 page.
ACTION_LABELS = {
    "department.add": "新增部门",
    "department.rename": "部门改名",
    "department.move": "调整上级部门",
    "department.notify": "修改通知设置",
    "department.notify_test": "发送测试消息",
    "item.add": "新增服务事项",
    "device.add": "新增设备",
    "device.disable": "停用设备",
    "device.enable": "启用设备",
    "device.rotate_key": "更换设备密钥",
    "device.pair_code": "生成配对码",
    "device.paired": "设备完成配对",
    "user.add": "新增用户",
    "user.disable": "停用用户",
    "user.enable": "启用用户",
    "user.unlock": "解除锁定",
    "user.move": "调整用户部门",
    "user.password_link": "生成设置密码链接",
    "user.password_set": "用户设置密码",
    "calendar.holiday": "设为节假日",
    "calendar.workday": "设为调休工作日",
    "calendar.remove": "删除日历调整",
    "reasons.import": "导入评价原因代码表",
    "exchange.requeue": "重新上报",
    "department.credit_code": "设置统一社会信用代码",
    "client.add": "新增接入系统",
    "client.disable": "停用接入系统",
    "client.enable": "启用接入系统",
}


def shell_actor() -> str:
    """Who made a change from the ``hcp`` command: ``cli:`` and the login of the shell."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's bare uid)
        login = "unknown"
    return f"cli:{login}"[:64]


def record(session: Session, actor: User | str, action: str, target: str,
           before: dict | None = None, after: dict | None = None) -> AuditEntry:
    """Add one entry for ``action`` on ``target`` (e.g. ``device 7 5号窗口平板``); the caller commits."""
    if action not in ACTION_LABELS:
        raise ValueError(f"unknown audit action {action}")
    name = actor if isinstance(actor, str) else actor.username
    entry = AuditEntry(at=utcnow(), actor=name, action=action, target=target[:200],
                       before=before or None, after=after or None)
    session.add(entry)
    return entry


def changed(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the fields that differ, from both sides."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def entries(session: Session, *, actor: str | None = None, action: str | None = None,
            page: int = 1, per_page: int = 50) -> tuple[list[AuditEntry], int]:
    """The log, newest first, optionally narrowed by actor and action; and the total count."""
    stmt = select(AuditEntry)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(AuditEntry.id.desc()).offset((page - 1) * per_page).limit(per_page))
    return list(rows), total
