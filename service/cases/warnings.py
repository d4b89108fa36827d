"""Red and yellow cards (红黄牌) from working-day deadlines, and who is told when (SPEC §2).

A case's *next open deadline* is ``callback_due`` while it waits for the verification
callback (``unassigned``/``assigned``), else ``close_due``. It is **yellow** when at most
one working day is left to that deadline (the deadline is today or the next working day)
and **red** once the deadline has passed; closed cases carry no card.

Each card is issued once per case and deadline — a case that was yellow before its
callback can be yellow again before its closure:

- ``yellow`` → the assignee (the department's supervisors while nobody is assigned);
- ``red`` → the assignee and the department's supervisors;
- ``escalated`` (red for more than 2 working days) → the managers of the case's
  department and of every department above it.

Plain functions over a session; the sweep task commits and then hands the delivery ids
to ``workers.tasks.send_notification``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, case, exists, null, select, update
from sqlalchemy.orm import Session, joinedload

from models import LEVEL_LABELS, STATUS_LABELS, Case, CaseEvent, Department, Notification, User
from models.types import utcnow
from service import notify
from models.clock import local_date
from service.cases.deadlines import WorkCalendar

CALLBACK_STATUSES = ("unassigned", "assigned")
CLOSE_STATUSES = ("rectifying", "invalid_review", "explain_review", "feedback")
DEADLINES = {"callback": CALLBACK_STATUSES, "close": CLOSE_STATUSES}
DEADLINE_LABELS = {"callback": "回访核实期限", "close": "办结期限"}
STAGES = ("yellow", "red", "escalated")
STAGE_LABELS = {"yellow": "黄牌预警", "red": "红牌预警", "escalated": "红牌督办"}
WARNING_LABELS = {"yellow": "黄牌", "red": "红牌"}
ESCALATE_AFTER = 2  # working days of red before the managers are told


def next_deadline(status: str) -> str | None:
    """``callback`` or ``close``: which deadline a case in ``status`` is working towards."""
    for name, statuses in DEADLINES.items():
        if status in statuses:
            return name
    return None


def due_of(case_row: Case) -> date | None:
    """The date of the case's next open deadline (None when closed)."""
    name = next_deadline(case_row.status)
    return None if name is None else (case_row.callback_due if name == "callback" else case_row.close_due)


def yellow_until(calendar: WorkCalendar, today: date) -> date:
    """The last due date that is yellow on ``today``: the day before the 2nd working day on."""
    return calendar.add_working_days(today, 2) - timedelta(days=1)


def escalate_before(calendar: WorkCalendar, today: date) -> date:
    """Due dates before this have been red for more than ESCALATE_AFTER working days.

    Red for N working days means N working days in ``(due, today]``; more than 2 needs
    the 3rd working day counted back from today (inclusive) to lie after ``due``.
    """
    day, seen = today, 0
    while True:
        if calendar.is_workday(day):
            seen += 1
            if seen == ESCALATE_AFTER + 1:
                return day
        day -= timedelta(days=1)


def warning_for(calendar: WorkCalendar, today: date, status: str, callback_due: date,
                close_due: date) -> str | None:
    """The card of one case on ``today``: None, ``yellow`` or ``red``."""
    name = next_deadline(status)
    if name is None:
        return None
    due = callback_due if name == "callback" else close_due
    if due < today:
        return "red"
    return "yellow" if calendar.working_days_between(today, due) <= 1 else None


def update_warnings(session: Session, today: date, calendar: WorkCalendar) -> int:
    """Set ``cases.warning`` for every case in one UPDATE; return how many rows changed.

    The same rule as ``warning_for``, as SQL: the calendar is reduced to two dates for
    today, so millions of cases need no Python loop. Only changed rows are written, and
    the case ``version`` is left alone — a card is not an action and must not make a
    handler's concurrent action fail.
    """
    cases = Case.__table__
    due = case((cases.c.status.in_(CALLBACK_STATUSES), cases.c.callback_due), else_=cases.c.close_due)
    level = case(
        (cases.c.status.not_in(CALLBACK_STATUSES + CLOSE_STATUSES), null()),
        (due < today, "red"),
        (due <= yellow_until(calendar, today), "yellow"),
        else_=null(),
    )
    stmt = update(cases).where(cases.c.warning.is_distinct_from(level)).values(warning=level)
    return session.execute(stmt).rowcount


@dataclass
class Issued:
    """A card issued for a case in this sweep, with the people and channels told."""

    case_id: int
    stage: str
    deadline: str
    recipients: list[User]
    delivery_ids: list[int]


def _ancestor_ids(dept: Department) -> list[int]:
    """Ids from the root down to ``dept`` itself, read from its materialised path."""
    return [int(p) for p in dept.path.strip("/").split("/") if p]


def supervisors(session: Session, dept: Department) -> list[User]:
    """Active supervisors of ``dept``; if it has none, of the nearest department above."""
    chain = _ancestor_ids(dept)
    rows = session.scalars(select(User).where(User.role == "supervisor", User.active.is_(True),
                                              User.department_id.in_(chain)).order_by(User.id))
    by_dept: dict[int, list[User]] = {}
    for user in rows:
        by_dept.setdefault(user.department_id, []).append(user)
    for dept_id in reversed(chain):
        if by_dept.get(dept_id):
            return by_dept[dept_id]
    return []


def managers(session: Session, dept: Department) -> list[User]:
    """Active managers of ``dept`` and of every department above it."""
    return list(session.scalars(select(User).where(
        User.role == "manager", User.active.is_(True),
        User.department_id.in_(_ancestor_ids(dept))).order_by(User.id)))


def recipients(session: Session, case_row: Case, stage: str) -> tuple[list[User], list[Department]]:
    """Who is told of ``stage`` for the case, and whose department channels carry it."""
    if stage == "escalated":
        people = managers(session, case_row.department)
        return people, [p.department for p in people]
    assignee = case_row.assignee if case_row.assignee and case_row.assignee.active else None
    people = [assignee] if assignee else []
    if stage == "red" or assignee is None:
        people += [s for s in supervisors(session, case_row.department) if s not in people]
    return people, [case_row.department]


def _role(user: User, case_row: Case) -> str:
    if user.id == case_row.assignee_id:
        return "承办人"
    return {"supervisor": "负责人", "manager": "管理人员"}.get(user.role, user.role)


def message(case_row: Case, stage: str, deadline: str, due: date, today: date,
            calendar: WorkCalendar, people: list[User]) -> tuple[str, str]:
    """Subject and text of a card. No rater name or phone: group chats are wide."""
    label, what = STAGE_LABELS[stage], DEADLINE_LABELS[deadline]
    if stage == "yellow":
        left = calendar.working_days_between(today, due)
        head = (f"工单 {case_row.id} {what}（{due}）就在今天" if left == 0
                else f"工单 {case_row.id} 距{what}（{due}）不足 1 个工作日")
    else:
        late = calendar.working_days_between(due, today)
        head = f"工单 {case_row.id} 已超过{what}（{due}）{late} 个工作日"
        if stage == "escalated":
            head += f"，逾期超过 {ESCALATE_AFTER} 个工作日，请督办"
    rating = case_row.rating
    facts = [f"部门：{case_row.department.name}", f"状态：{STATUS_LABELS[case_row.status]}",
             f"承办人：{_name(case_row.assignee) if case_row.assignee else '未分派'}"]
    about = [f"评价：{LEVEL_LABELS.get(rating.level, rating.level)}",
             f"收到 {local_date(rating.received_at)}"]
    if rating.item is not None:
        about.append(f"事项：{rating.item.name}")
    if rating.window:
        about.append(f"窗口：{rating.window}")
    told = "、".join(f"{_name(p)}（{_role(p, case_row)}）" for p in people) or "（无收件人）"
    text = "\n".join([f"{notify.PREFIX}{label}：{head}", "；".join(facts), "，".join(about),
                      f"通知：{told}", "请及时处理。"])
    return f"{notify.PREFIX}{label}：工单 {case_row.id} {what} {due}", text


def _name(user: User) -> str:
    return user.display_name or user.username


def _candidates(session: Session, stage: str, deadline: str, today: date, calendar: WorkCalendar,
                limit: int):
    """Open cases due ``stage`` for ``deadline`` that have not had it issued yet."""
    due_col = Case.callback_due if deadline == "callback" else Case.close_due
    cond = Case.warning == ("yellow" if stage == "yellow" else "red")
    if stage == "escalated":
        cond = and_(cond, due_col < escalate_before(calendar, today))
    issued = exists().where(Notification.case_id == Case.id, Notification.kind == f"{stage}:{deadline}")
    stmt = (select(Case)
            .where(Case.status.in_(DEADLINES[deadline]), cond, ~issued)
            .options(joinedload(Case.department), joinedload(Case.assignee), joinedload(Case.rating))
            .order_by(Case.id).limit(limit))
    return session.scalars(stmt).unique().all()


def issue_warnings(session: Session, today: date, calendar: WorkCalendar,
                   limit: int = 1000) -> list[Issued]:
    """Issue every card due and not yet issued; the caller commits, then sends the deliveries.

    Each (case, deadline, stage) is claimed by a unique notification key, so a sweep run
    twice, or two sweeps at once, issue it once. The case history records each card.
    """
    out: list[Issued] = []
    now = utcnow()
    for deadline in DEADLINES:
        for stage in STAGES:
            for row in _candidates(session, stage, deadline, today, calendar, limit):
                due = row.callback_due if deadline == "callback" else row.close_due
                people, depts = recipients(session, row, stage)
                key = f"case:{row.id}:{deadline}:{stage}"
                payload = {"level": "yellow" if stage == "yellow" else "red", "stage": stage,
                           "deadline": deadline, "due": due.isoformat(), "today": today.isoformat(),
                           "notified": [p.username for p in people]}
                if notify.claim(session, key, f"{stage}:{deadline}", payload, row.id, sent=now) is None:
                    continue  # a concurrent sweep issued it
                subject, text = message(row, stage, deadline, due, today, calendar, people)
                ids = notify.deliveries(session, key, subject=subject, text=text, users=people,
                                        departments=depts, case_id=row.id)
                session.add(CaseEvent(case_id=row.id, at=now, actor_id=None, action="warning",
                                      from_status=row.status, to_status=row.status,
                                      note=text.splitlines()[0].removeprefix(notify.PREFIX),
                                      data=payload))
                out.append(Issued(row.id, stage, deadline, people, ids))
    return out


def sweep(session: Session, today: date, calendar: WorkCalendar | None = None) -> list[Issued]:
    """Bring every case's card up to date for ``today`` and issue the cards now due."""
    calendar = calendar or WorkCalendar.load(session)
    update_warnings(session, today, calendar)
    return issue_warnings(session, today, calendar)

