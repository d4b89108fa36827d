"""Staff accounts after they are made: one-time set-password links, disable/enable,
unlock, and moving a user to another department (their open cases follow the scope
rule). Called by the admin console and ``hcp users …``; the caller commits.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from models import OPEN_STATUSES, ROLE_LABELS, Case, CaseEvent, Department, PasswordLink, User
from models.types import utcnow
from service.audit import changed
from service.auth.access import revoke_tokens
from service.org import add_user
from service.privacy import key_digest

LINK_HOURS = 72
MIN_PASSWORD = 8
LINK_PREFIX = "hcpw_"


class StaffError(ValueError):
    """A refused change: ``reason`` is taken | unknown_link | short_password."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def add_user_with_link(session: Session, username: str, role: str, dept: Department,
                       display_name: str | None, email: str | None) -> tuple[User, str]:
    """A new user with no usable password and a one-time link to set one (the raw token,
    returned this once): nobody but the user ever knows the password."""
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise StaffError("taken")
    # A random password nobody is told: the account cannot sign in until the link is used.
    user = add_user(username, secrets.token_urlsafe(32), role, dept, display_name, email)
    session.flush()
    return user, issue_link(session, user)


def issue_link(session: Session, user: User) -> str:
    """A set-password link token for ``user``, valid LINK_HOURS, once; earlier unused
    links of the user end now."""
    now = utcnow()
    session.execute(update(PasswordLink).where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None),
                                               PasswordLink.expires_at > now).values(expires_at=now))
    raw = LINK_PREFIX + secrets.token_urlsafe(32)
    session.add(PasswordLink(user_id=user.id, token_hash=key_digest(raw), created_at=now,
                             expires_at=now + timedelta(hours=LINK_HOURS)))
    return raw


def live_link(session: Session, raw: str) -> PasswordLink | None:
    row = session.scalar(select(PasswordLink).where(PasswordLink.token_hash == key_digest(raw)))
    if row is None or row.used_at is not None or row.expires_at <= utcnow() or not row.user.active:
        return None
    return row


def set_password_by_link(session: Session, raw: str, password: str) -> User:
    """Use a link: the user's password becomes ``password``; every session and token of
    the user ends. Taken by a conditional UPDATE, so a link works once."""
    if len(password) < MIN_PASSWORD:
        raise StaffError("short_password")
    row = live_link(session, raw)
    if row is None:
        raise StaffError("unknown_link")
    taken = session.execute(update(PasswordLink).where(PasswordLink.id == row.id, PasswordLink.used_at.is_(None))
                            .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise StaffError("unknown_link")
    row.user.password_hash = generate_password_hash(password)
    revoke_tokens(row.user)
    return row.user


def snapshot(user: User) -> dict:
    """The user's fields as the 操作日志 shows them (never a password or token)."""
    return {"角色": ROLE_LABELS.get(user.role, user.role), "部门": user.department.code, "启用": user.active}


def moved(before: dict, user: User, returned: list[int]) -> tuple[dict, dict]:
    """The 操作日志's before and after of a move: the changed fields and the cases sent back."""
    after = snapshot(user)
    if returned:
        after["退回待分派工单"] = "、".join(f"#{i}" for i in returned)
    return changed(before, after)


def set_active(user: User, active: bool) -> None:
    """Enable or disable; disabling ends every token and session of the user at once."""
    user.active = active
    if not active:
        revoke_tokens(user)


def move_user(session: Session, user: User, dept: Department, actor: User) -> list[int]:
    """Move ``user`` to ``dept``. Open cases assigned to them stay only where the new
    department lies in the case's scope (the case's department subtree — whom an assign
    may name); the others go back to 待分派, each with a history entry. Returns those ids."""
    user.department = dept
    session.flush()
    returned = []
    cases = session.scalars(select(Case).where(Case.assignee_id == user.id, Case.status.in_(OPEN_STATUSES))
                            .order_by(Case.id))
    now = utcnow()
    for case in cases:
        if dept.path.startswith(case.department.path):
            continue
        before = case.status
        case.assignee_id, case.status, case.updated_at = None, "unassigned", now
        session.add(CaseEvent(case_id=case.id, at=now, actor_id=actor.id, action="unassign", from_status=before,
                              to_status="unassigned",
                              note=f"承办人 {user.username} 调往「{dept.name}」，不再负责本部门工单，退回待分派"))
        returned.append(case.id)
    return returned
