"""Red and yellow cards (红黄牌): one computation of a case's next deadline and its card,
at the moment of asking, and who is told when (SPEC §2, §9).

A case's *next open deadline* is ``callback_due`` while it waits for the verification
callback (``unassigned``/``assigned``, real-name raters only — an anonymous rating has no
callback), else ``close_due``; closed cases have none. The card on a given day:

- **red** once the deadline has passed (it is the end of its due day);
- **yellow** for the callback deadline from the start of its due day (Asia/Shanghai),
  for the closure deadline from ``HCP_YELLOW_CLOSE_DAYS`` (3) working days before it;
- none otherwise.

``Cards`` holds the rule for one day (today by the application's clock, ``Cards.now``):
``cards.of(case)`` answers in Python, ``cards.level_sql()`` / ``cards.where(level)`` as
SQL, so the API's ``warning``, the list filters, the badges, the KPIs, the metrics, the
digest and the sweep all read the same computation and never a stored column.

Each card is *notified* once per case and deadline — a case that was yellow before its
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

from flask import current_app
from sqlalchemy import and_, case, exists, literal, null, or_, select
from sqlalchemy.orm import Session, joinedload

from models import LEVEL_LABELS, STATUS_LABELS, Case, CaseEvent, Department, Notification, User
from models.types import utcnow
from service import notify
from models.clock import local_date
from service.cases.deadlines import UNIT_LABELS, WorkCalendar

CALLBACK_STATUSES = ("unassigned", "assigned")
CLOSE_STATUSES = ("rectifying", "extension_review", "invalid_review", "explain_review", "feedback")
DEADLINES = ("callback", "close")
DEADLINE_LABELS = {"callback": "回访核实期限", "close": "办结期限"}
STAGES = ("yellow", "red", "escalated")
STAGE_LABELS = {"yellow": "黄牌预警", "red": "红牌预警", "escalated": "红牌督办"}
WARNING_LABELS = {"yellow": "黄牌", "red": "红牌"}
LEVELS = ("yellow", "red")
ESCALATE_AFTER = 2  # working days of red before the managers are told


def next_deadline(status: str, callback_due: date | None) -> str | None:
    """``callback`` or ``close``: which deadline a case is working towards (None when closed)."""
    if status in CALLBACK_STATUSES and callback_due is not None:
        return "callback"
    if status in CALLBACK_STATUSES or status in CLOSE_STATUSES:
        return "close"
    return None


def next_deadline_sql(cases=Case):
    """SQL for ``next_deadline``: 'callback', 'close' or NULL (``cases`` is the model or a table's columns)."""
    return case((and_(cases.status.in_(CALLBACK_STATUSES), cases.callback_due.is_not(None)), literal("callback")),
                (cases.status.in_(CALLBACK_STATUSES + CLOSE_STATUSES), literal("close")), else_=null())


def next_due_sql(cases=Case):
    """SQL for the date of the next open deadline (the closure deadline for closed cases,
    so ordering by it still works; ``next_deadline_sql`` tells them apart)."""
    return case((and_(cases.status.in_(CALLBACK_STATUSES), cases.callback_due.is_not(None)), cases.callback_due),
                else_=cases.close_due)


@dataclass(frozen=True)
class Deadline:
    """A case's next open deadline as seen on one day, and its card."""

    name: str | None  # "callback" | "close" | None when closed
    day: date | None
    level: str | None = None  # None | "yellow" | "red"
    left: int = 0  # days left in the deadline unit (0: due today)
    overdue: int = 0  # days past in the deadline unit (0 when not past)
    unit: str = UNIT_LABELS["working"]  # WorkCalendar.unit: 天 when HCP_DEADLINE_UNIT=natural

    @property
    def is_overdue(self) -> bool:
        return self.level == "red"


class Cards:
    """The red/yellow rule for one day: in Python (``of``) and as SQL (``level_sql``, ``where``)."""

    def __init__(self, calendar: WorkCalendar, today: date, yellow_close_days: int = 3):
        self.calendar, self.today = calendar, today
        # The last due date that is yellow today, per deadline: the callback's own day;
        # the closure deadline N working days ahead (the day before the (N+1)th working day).
        self.yellow_until = {"callback": today,
                             "close": calendar.add_working_days(today, yellow_close_days + 1) - timedelta(days=1)}

    @classmethod
    def now(cls, session: Session, calendar: WorkCalendar | None = None) -> Cards:
        """The rule for today by the application's clock (Asia/Shanghai)."""
        return cls.on(session, local_date(utcnow()), calendar)

    @classmethod
    def on(cls, session: Session, today: date, calendar: WorkCalendar | None = None) -> Cards:
        settings = current_app.config["HCP_SETTINGS"]
        return cls(calendar or WorkCalendar.load(session), today, settings.yellow_close_days)

    def level(self, name: str | None, due: date | None) -> str | None:
        if name is None or due is None:
            return None
        if due < self.today:
            return "red"
        return "yellow" if due <= self.yellow_until[name] else None

    def of(self, case_row: Case) -> Deadline:
        """The next open deadline of ``case_row`` today, with its card."""
        name = next_deadline(case_row.status, case_row.callback_due)
        if name is None:
            return Deadline(None, None)
        day = case_row.callback_due if name == "callback" else case_row.close_due
        level = self.level(name, day)
        if level == "red":
            return Deadline(name, day, level, overdue=self.calendar.working_days_between(day, self.today),
                            unit=self.calendar.unit)
        return Deadline(name, day, level, left=self.calendar.working_days_between(self.today, day),
                        unit=self.calendar.unit)

    def level_sql(self, name, due):
        """SQL for the card given SQL for the deadline's name and date."""
        return case((name.is_(None), null()), (due < self.today, literal("red")),
                    (and_(name == "callback", due <= self.yellow_until["callback"]), literal("yellow")),
                    (and_(name == "close", due <= self.yellow_until["close"]), literal("yellow")),
                    else_=null())

    def where(self, level: str, name=None, due=None):
        """A WHERE clause: cases (or rollup rows) carrying ``level`` today."""
        name = next_deadline_sql() if name is None else name
        due = next_due_sql() if due is None else due
        if level == "red":
            return and_(name.is_not(None), due < self.today)
        if level == "yellow":
            return and_(due >= self.today, or_(and_(name == "callback", due <= self.yellow_until["callback"]),
                                               and_(name == "close", due <= self.yellow_until["close"])))
        if level == "any":
            return or_(self.where("red", name, due), self.where("yellow", name, due))
        raise ValueError(f"no card {level!r}")

    def overdue(self, cases=Case):
        """A WHERE clause: open cases past their closure deadline (超期, the figures' ``overdue_open``)."""
        return and_(cases.status.in_(CALLBACK_STATUSES + CLOSE_STATUSES), cases.close_due < self.today)


def escalate_before(calendar: WorkCalendar, today: date) -> date:
    """Due dates before this have been red for more than ESCALATE_AFTER working days.

    Red for N working days means N working days in ``(due, today]``; more than 2 needs
    the 3rd working day counted back from today (inclusive) to lie after ``due``.
    """
    day, seen = today, 0
    while True:
        if calendar.counts(day):
            seen += 1
            if seen == ESCALATE_AFTER + 1:
                return day
        day -= timedelta(days=1)


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
                else f"工单 {case_row.id} 距{what}（{due}）还有 {left} {calendar.unit}")
    else:
        late = calendar.working_days_between(due, today)
        head = f"工单 {case_row.id} 已超过{what}（{due}）{late} {calendar.unit}"
        if stage == "escalated":
            head += f"，逾期超过 {ESCALATE_AFTER} {calendar.unit}，请督办"
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


def _candidates(session: Session, stage: str, deadline: str, cards: Cards, limit: int):
    """Open cases carrying ``stage`` for ``deadline`` today that have not had it issued yet."""
    name, due = next_deadline_sql(), next_due_sql()
    cond = cards.where("yellow" if stage == "yellow" else "red")
    if stage == "escalated":
        cond = and_(cond, due < escalate_before(cards.calendar, cards.today))
    issued = exists().where(Notification.case_id == Case.id, Notification.kind == f"{stage}:{deadline}")
    stmt = (select(Case)
            .where(name == deadline, cond, ~issued)
            .options(joinedload(Case.department), joinedload(Case.assignee), joinedload(Case.rating))
            .order_by(Case.id).limit(limit))
    return session.scalars(stmt).unique().all()


def issue_warnings(session: Session, cards: Cards, limit: int = 1000) -> list[Issued]:
    """Issue every card due and not yet issued; the caller commits, then sends the deliveries.

    Each (case, deadline, stage) is claimed by a unique notification key, so a sweep run
    twice, or two sweeps at once, issue it once. The case history records each card.
    """
    out: list[Issued] = []
    now = utcnow()
    today, calendar = cards.today, cards.calendar
    for deadline in DEADLINES:
        for stage in STAGES:
            for row in _candidates(session, stage, deadline, cards, limit):
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


def sweep(session: Session, today: date | None = None, calendar: WorkCalendar | None = None) -> list[Issued]:
    """Notify the cards now due (``today`` by the application's clock unless given).

    The cards themselves are computed when asked (``Cards``); the sweep stores nothing
    but the notifications, so it can run late or twice without anyone seeing a stale card.
    """
    cards = Cards.now(session, calendar) if today is None else Cards.on(session, today, calendar)
    return issue_warnings(session, cards)
