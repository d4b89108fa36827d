"""The morning digest (每日待办提醒): each handler's open cases, nearest deadline first.

Each line gives the days left or past in the deadline unit (个工作日, or 天 with
HCP_DEADLINE_UNIT=natural). Sent on working days only (the Chinese calendar with its
make-up days, not Mon–Fri), by
e-mail to the handler and as a group post to the handler's department webhook. Issued
once per handler and day (key ``digest:2021-10-08:u7``), so a beat that fires twice or a
task delivered twice sends it once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from models import OPEN_STATUSES, STATUS_LABELS, Case, User
from models.types import utcnow
from service import notify
from service.cases.warnings import DEADLINE_LABELS, WARNING_LABELS, Cards, next_due_sql


@dataclass
class Digest:
    user_id: int
    case_ids: list[int]
    delivery_ids: list[int]


def open_cases_by_deadline(session: Session, user_id: int) -> list[Case]:
    """The user's open cases ordered by their next open deadline, then by id."""
    stmt = (select(Case).where(Case.assignee_id == user_id, Case.status.in_(OPEN_STATUSES))
            .options(joinedload(Case.rating))
            .order_by(next_due_sql(), Case.id))
    return list(session.scalars(stmt))


def text_for(user: User, cases: list[Case], cards: Cards) -> tuple[str, str]:
    """Subject and body of one handler's digest, with each case's card as of ``cards``' day."""
    name = user.display_name or user.username
    today = cards.today
    lines = [f"{notify.PREFIX}每日待办：{name}，您有 {len(cases)} 件未办结工单（{today}）"]
    for i, row in enumerate(cases, 1):
        due = cards.of(row)
        card = f"【{WARNING_LABELS[due.level]}】" if due.level in WARNING_LABELS else ""
        lines.append(f"{i}. {card}工单 {row.id}，{STATUS_LABELS[row.status]}，"
                     f"{DEADLINE_LABELS[due.name]} {due.day}（{_left(due)}）")
    return f"{notify.PREFIX}每日待办：{len(cases)} 件未办结工单（{today}）", "\n".join(lines)


def _left(due) -> str:
    """Days left or past, in the deadline unit (个工作日, or 天 when HCP_DEADLINE_UNIT=natural)."""
    if due.level == "red":
        return f"已逾期 {due.overdue} {due.unit}"
    return "今日到期" if due.left == 0 else f"还有 {due.left} {due.unit}"


def issue_digests(session: Session, today: date) -> list[Digest]:
    """Issue today's digest to every active user with open cases; the caller commits."""
    users = session.scalars(
        select(User).where(User.active.is_(True),
                           User.id.in_(select(Case.assignee_id).where(Case.status.in_(OPEN_STATUSES))))
        .options(joinedload(User.department)).order_by(User.id))
    out = []
    now = utcnow()
    cards = Cards.on(session, today)
    for user in users:
        cases = open_cases_by_deadline(session, user.id)
        key = f"digest:{today.isoformat()}:u{user.id}"
        payload = {"user": user.username, "today": today.isoformat(), "cases": [c.id for c in cases]}
        if notify.claim(session, key, "digest", payload, sent=now) is None:
            continue
        subject, text = text_for(user, cases, cards)
        # The department mailbox is not copied: the digest is the handler's own list.
        ids = notify.deliveries(session, key, subject=subject, text=text, users=[user],
                                departments=[user.department], department_mail=False)
        out.append(Digest(user.id, [c.id for c in cases], ids))
    return out
