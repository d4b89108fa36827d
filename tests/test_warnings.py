"""Red/yellow cards (红黄牌), their notifications and the morning digest (SPEC §2, issue 3).

Cards are computed on chosen dates around National Day 2021 (1–7 October off, Saturday
9 October a make-up workday). Notifications go through a real Celery worker process to
a real local HTTP server playing the WeCom/DingTalk group robot and a real local SMTP
server (aiosmtpd).
"""
from __future__ import annotations

import email
import email.policy
import itertools
import re
import threading
import uuid
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from models import Case, CaseEvent, Notification, Rating, User
from service.cases import routing, warnings, workflow
from models.clock import local_date
from service.cases.deadlines import WorkCalendar
from tests import support
from tests.support import wait_for

RECEIVED = "2021-09-30T10:00:00+08:00"  # callback due 2021-10-08, closure due 2021-10-27


# -- the robot webhook and the mail server --------------------------------------------

class Inbox:
    """aiosmtpd handler keeping every message with its envelope recipients."""

    def __init__(self):
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpts, m in list(self.messages) if address in rcpts]


@pytest.fixture(scope="module")
def robot_server():
    server = support.RobotServer()
    yield server
    server.stop()


@pytest.fixture
def robot(robot_server):
    """The module's robot webhook, with nothing received yet."""
    with robot_server.lock:
        robot_server.posts.clear()
        robot_server.refused.clear()
        robot_server.fail.clear()
    return robot_server


@pytest.fixture(scope="module")
def smtp_server():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=support.free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture(scope="module")
def notify_queue(hcp_env):
    return hcp_env["HCP_INSTANCE"] + "-notify"


@pytest.fixture(scope="module")
def notify_worker(app, hcp_env, smtp_server, notify_queue):
    """A worker of this module's own, started with HCP_SMTP_* (read once, at start).

    It serves its own queue, so a session-wide worker without SMTP settings never
    takes these tasks.
    """
    controller, _ = smtp_server
    env = {**hcp_env, "HCP_INSTANCE": notify_queue, "HCP_SMTP_HOST": "127.0.0.1",
           "HCP_SMTP_PORT": str(controller.port), "HCP_SMTP_FROM": "hcp@example.gov.cn"}
    proc = support.CeleryWorker(env, beat=False, name="notify")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def inbox(smtp_server):
    _, box = smtp_server
    box.messages.clear()
    return box


@pytest.fixture
def run_task(notify_queue, notify_worker):
    """Send a task by name to the notify worker's queue."""
    from workers import tasks

    def send(name: str, **kwargs):
        getattr(tasks, name).apply_async(kwargs=kwargs, queue=notify_queue)
    return send


# -- building cases on chosen dates ----------------------------------------------------

def set_email(app, user, address):
    from service.extensions import db
    with app.app_context():
        db.session.get(User, user.id).email = address
        db.session.commit()


def set_channels(app, dept, webhook=None, mailbox=None):
    from models import Department
    from service.extensions import db
    with app.app_context():
        row = db.session.get(Department, dept.id)
        row.notify_webhook, row.notify_email = webhook, mailbox
        db.session.commit()


def bad_case(app, device, received: str = RECEIVED, real_name: bool = True) -> int:
    """A bad rating received at ``received`` and routed to its case the normal way
    (of a real-name rater, so it has a callback deadline, unless ``real_name`` is False)."""
    from service.extensions import db
    with app.app_context():
        at = datetime.fromisoformat(received)
        rating = Rating(client_id=str(uuid.uuid4()), body_hash="0" * 64, device_id=device.id,
                        department_id=device.department_id, channel=device.channel,
                        window=device.window, level=1, negative=True, rated_at=at,
                        rated_date=local_date(at), received_at=at, real_name=real_name)
        db.session.add(rating)
        db.session.flush()
        case_id = routing.route(db.session, rating.id)
        db.session.commit()
        return case_id


def act(app, case_id: int, username: str, action: str, **data) -> str:
    """Take a workflow action as ``username`` and commit; the new status."""
    from service.extensions import db
    with app.app_context():
        case = db.session.get(Case, case_id)
        user = db.session.scalar(select(User).where(User.username == username))
        workflow.apply(db.session, case, user, action, data)
        db.session.commit()
        return case.status


def sweep_here(query, day: str) -> list[tuple[str, list[str]]]:
    """Run the sweep in this process for ``day`` and commit; (stage, recipients) issued."""
    def run(session):
        issued = warnings.sweep(session, date.fromisoformat(day))
        session.commit()
        return [(i.stage, sorted(u.username for u in i.recipients)) for i in issued]
    return query(run)


def warning_of(app, case_id, day: str):
    """The card of the case on ``day``, as every reader computes it."""
    from service.extensions import db
    with app.app_context():
        return warnings.Cards.on(db.session, date.fromisoformat(day)).of(db.session.get(Case, case_id)).level


def deliveries(app):
    """(key, sent) of every delivery row."""
    from service.extensions import db
    with app.app_context():
        rows = db.session.scalars(select(Notification).where(Notification.kind.in_(("webhook", "email"))))
        return {r.key: r for r in rows}


def all_sent(app, count: int):
    rows = deliveries(app)
    return len(rows) == count and all(r.sent_at for r in rows.values())


@pytest.fixture
def office(app, org, robot):
    """District → bureau → section; a manager at each of the upper two, a sibling bureau's
    manager who must never hear of this section's cases; supervisor and handler in the section."""
    district = org.department("district", "某区政务服务中心")
    bureau = org.department("bureau", "区市场监管局", parent=district)
    sibling = org.department("sibling", "区人社局", parent=district)
    section = org.department("section", "登记注册科", parent=bureau)
    people = {
        "boss": org.user("boss", "manager", district),
        "chief": org.user("chief", "manager", bureau),
        "other": org.user("other", "manager", sibling),
        "sup": org.user("sup", "supervisor", section),
        "han": org.user("han", "handler", section),
    }
    # Before the channels are set: the builders merge their (older) department objects back.
    device, _ = org.device(section, window="3")
    for name, user in people.items():
        set_email(app, user, f"{name}@example.gov.cn")
    set_channels(app, section, robot.url("section"), "section-box@example.gov.cn")
    set_channels(app, district, robot.url("district"))
    set_channels(app, sibling, robot.url("sibling"), "sibling-box@example.gov.cn")
    return {"section": section, "bureau": bureau, "district": district, "device": device, **people}


# -- the rule, on chosen dates --------------------------------------------------------

@pytest.mark.parametrize("today,status,expected", [
    ("2021-09-29", "assigned", None),
    ("2021-09-30", "assigned", None),        # received today: no card on the day it arrives
    ("2021-10-05", "assigned", None),        # inside the holiday, before the callback's due day
    ("2021-10-08", "assigned", "yellow"),    # the callback's due day, from its start
    ("2021-10-09", "assigned", "red"),       # the make-up Saturday: past due
    ("2021-10-09", "unassigned", "red"),
    ("2021-10-09", "rectifying", None),      # verified: the closure deadline (10-27) counts now
    ("2021-10-21", "rectifying", None),      # 4 working days left (22nd, 25th, 26th, 27th)
    ("2021-10-22", "rectifying", "yellow"),  # 3 working days left: HCP_YELLOW_CLOSE_DAYS
    ("2021-10-23", "extension_review", "yellow"),  # a Saturday, still 3 working days left
    ("2021-10-26", "feedback", "yellow"),
    ("2021-10-27", "invalid_review", "yellow"),
    ("2021-10-28", "explain_review", "red"),
    ("2021-10-28", "closed", None),
])
def test_warning_rule_on_chosen_dates(today, status, expected):
    cards = warnings.Cards(WorkCalendar(), date.fromisoformat(today), yellow_close_days=3)
    case = Case(status=status, callback_due=date(2021, 10, 8), close_due=date(2021, 10, 27))
    assert cards.of(case).level == expected


@pytest.mark.parametrize("today,expected", [("2021-10-09", None), ("2021-10-22", "yellow"),
                                            ("2021-10-28", "red")])
def test_an_anonymous_case_has_only_the_closure_deadline(today, expected):
    cards = warnings.Cards(WorkCalendar(), date.fromisoformat(today), yellow_close_days=3)
    due = cards.of(Case(status="assigned", callback_due=None, close_due=date(2021, 10, 27)))
    assert (due.name, due.level) == ("close", expected)


def test_escalation_counts_working_days_of_red():
    """Due 10-08: red 1 working day on Sat 10-09 (make-up day), 2 on Mon 10-11, 3 on 10-12."""
    calendar = WorkCalendar()
    due = date(2021, 10, 8)
    assert [calendar.working_days_between(due, date(2021, 10, d)) for d in (9, 10, 11, 12)] == [1, 1, 2, 3]
    assert not due < warnings.escalate_before(calendar, date(2021, 10, 11))
    assert due < warnings.escalate_before(calendar, date(2021, 10, 12))
    # An admin-entered holiday on 10-12 pushes the escalation to 10-13.
    off = WorkCalendar({date(2021, 10, 12): "holiday"})
    assert not due < warnings.escalate_before(off, date(2021, 10, 12))
    assert due < warnings.escalate_before(off, date(2021, 10, 13))


def test_sql_rule_matches_the_python_rule_every_day_across_the_holiday(app, org, query):
    """``Cards.where`` (filters, KPIs, sweep) picks exactly the cases ``Cards.of`` (badges,
    API) gives each card, day by day."""
    from service.extensions import db

    dept = org.department("d1")
    org.user("h1", "handler", dept)
    device, _ = org.device(dept)
    received = ["2021-09-24T09:00:00+08:00", "2021-09-28T16:00:00+08:00", RECEIVED,
                "2021-10-08T11:00:00+08:00", "2021-10-09T08:30:00+08:00"]
    statuses = ["unassigned", "assigned", "rectifying", "feedback", "closed"]
    ids = []
    for (at, status), real_name in itertools.product(itertools.product(received, statuses), (True, False)):
        case_id = bad_case(app, device, at, real_name=real_name)
        with app.app_context():
            db.session.get(Case, case_id).status = status
            db.session.commit()
        ids.append(case_id)
    calendar = WorkCalendar()
    day = date(2021, 9, 24)
    seen = set()
    while day <= date(2021, 11, 5):
        def check(session, day=day):
            cards = warnings.Cards.on(session, day, calendar)
            rows = session.scalars(select(Case).where(Case.id.in_(ids))).all()
            for level in ("yellow", "red"):
                picked = set(session.scalars(select(Case.id).where(Case.id.in_(ids), cards.where(level))))
                assert picked == {r.id for r in rows if cards.of(r).level == level}, (day, level)
                seen.update((level, r.status) for r in rows if r.id in picked)
        query(check)
        day += timedelta(days=1)
    assert {("yellow", "assigned"), ("red", "unassigned"), ("yellow", "rectifying"), ("red", "feedback")} <= seen


def test_closing_clears_the_card(app, org, query):
    dept = org.department("d1")
    org.user("h1", "handler", dept)
    sup = org.user("s1", "supervisor", dept)
    device, _ = org.device(dept)
    case_id = bad_case(app, device)
    assert warning_of(app, case_id, "2021-10-09") == "red"
    act(app, case_id, "h1", "claim_invalid", reason="误评")
    act(app, case_id, sup.username, "approve")
    assert warning_of(app, case_id, "2021-10-09") is None


def test_a_card_does_not_bump_the_case_version(app, org, query):
    """A handler's pending action (version check) must not fail because of a sweep."""
    dept = org.department("d1")
    org.user("h1", "handler", dept)
    device, _ = org.device(dept)
    case_id = bad_case(app, device)
    before = query(lambda s: s.get(Case, case_id).version)
    assert sweep_here(query, "2021-10-12")
    assert query(lambda s: s.get(Case, case_id).version) == before
    assert warning_of(app, case_id, "2021-10-12") == "red"


def test_unassigned_case_yellow_goes_to_the_supervisors(app, org, query):
    dept = org.department("d1")
    sup = org.user("s1", "supervisor", dept)
    device, _ = org.device(dept)
    case_id = bad_case(app, device)  # no handler in d1: unassigned
    assert sweep_here(query, "2021-09-30") == []  # no card on the day it arrives
    assert sweep_here(query, "2021-10-08") == [("yellow", [sup.username])]
    assert query(lambda s: s.get(Case, case_id).status) == "unassigned"


def test_supervisor_of_the_nearest_department_above_when_the_section_has_none(app, org, query):
    bureau = org.department("b1")
    section = org.department("s1", parent=bureau)
    org.user("bsup", "supervisor", bureau)
    org.user("h1", "handler", section)
    device, _ = org.device(section)
    bad_case(app, device)
    assert sweep_here(query, "2021-10-09") == [("red", ["bsup", "h1"])]


def test_each_card_is_recorded_in_the_case_history(app, org, query):
    dept = org.department("d1")
    org.user("h1", "handler", dept)
    device, _ = org.device(dept)
    case_id = bad_case(app, device)
    for day in ("2021-09-30", "2021-10-08", "2021-10-08", "2021-10-09", "2021-10-12", "2021-10-12"):
        sweep_here(query, day)
    events = query(lambda s: [(e.action, e.data["stage"], e.data["deadline"]) for e in s.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == "warning")
        .order_by(CaseEvent.id))])
    assert events == [("warning", "yellow", "callback"), ("warning", "red", "callback"),
                      ("warning", "escalated", "callback")]


def test_a_delivery_whose_task_was_lost_is_found_again(app, org, query):
    """Made but never tried (the process died between commit and publish): the sweep resends it."""
    from service import notify

    dept = org.department("d1")

    def make(session):
        notify.claim(session, "t:fresh:webhook", "webhook", {"department_id": dept.id, "content": "x"})
        lost = notify.claim(session, "t:lost:webhook", "webhook", {"department_id": dept.id, "content": "x"})
        tried = notify.claim(session, "t:tried:webhook", "webhook", {"department_id": dept.id, "content": "x"})
        issued = notify.claim(session, "t:lost", "red:close", {}, sent=None)
        for row_id in (lost, tried, issued):
            session.get(Notification, row_id).created_at -= timedelta(hours=1)
        session.get(Notification, tried).attempts = 1  # failing: Celery retries it, not the sweep
        assert notify.claim(session, "t:lost:webhook", "webhook", {}) is None  # the key holds
        session.commit()
        return lost
    lost = query(make)
    assert query(lambda s: notify.never_tried(s, timedelta(minutes=10))) == [lost]


# -- notifications through the worker --------------------------------------------------

def barrier(app, org, robot, run_task, today: str):
    """Wait until the notify worker has run everything queued before this call.

    A fresh department's case received on the working day before ``today`` has its callback
    due ``today``: yellow then and on no earlier day, so no earlier sweep sends it. The
    worker takes tasks in order (one process, prefetch 1), so once its post arrives, the
    tasks queued earlier have run.
    """
    name = "barrier-" + uuid.uuid4().hex[:6]
    dept = org.department(name)
    org.user(name, "handler", dept)
    device, _ = org.device(dept)
    set_channels(app, dept, robot.url(name))
    received, calendar = date.fromisoformat(today) - timedelta(days=1), WorkCalendar()
    while not calendar.is_workday(received):
        received -= timedelta(days=1)
    bad_case(app, device, f"{received.isoformat()}T09:00:00+08:00")
    run_task("sweep_warnings", today=today)
    wait_for(lambda: robot.texts(name), message="the barrier post")


def test_each_card_goes_out_once_to_the_right_people(app, org, office, robot, inbox, run_task):
    case_id = bad_case(app, office["device"])
    assert act(app, case_id, "han", "verify", contacted=False) == "rectifying"

    # Closure due 2021-10-27: yellow on 10-26, swept three times.
    for _ in range(3):
        run_task("sweep_warnings", today="2021-10-26")
    wait_for(lambda: robot.texts("section") and inbox.to("han@example.gov.cn"), message="the yellow card")
    barrier(app, org, robot, run_task, "2021-10-26")
    assert len(robot.texts("section")) == 1
    yellow = robot.texts("section")[0]
    assert yellow.startswith("【好差评】黄牌预警")
    assert f"工单 {case_id}" in yellow and "办结期限（2021-10-27）" in yellow
    assert [m["Subject"] for m in inbox.to("han@example.gov.cn")] == \
        [f"【好差评】黄牌预警：工单 {case_id} 办结期限 2021-10-27"]
    assert inbox.to("sup@example.gov.cn") == [] and inbox.to("boss@example.gov.cn") == []
    assert len(inbox.to("section-box@example.gov.cn")) == 1

    # Red on 10-28 (1 working day late), 10-29 (2): assignee and supervisor, once.
    for day in ("2021-10-28", "2021-10-28", "2021-10-29"):
        run_task("sweep_warnings", today=day)
    barrier(app, org, robot, run_task, "2021-10-29")
    texts = robot.texts("section")
    assert len(texts) == 2 and texts[1].startswith("【好差评】红牌预警")
    assert "han（承办人）" in texts[1] and "sup（负责人）" in texts[1]
    assert len(inbox.to("han@example.gov.cn")) == 2
    assert len(inbox.to("sup@example.gov.cn")) == 1
    assert len(inbox.to("section-box@example.gov.cn")) == 2
    assert inbox.to("chief@example.gov.cn") == [] and robot.texts("district") == []

    # Red for 3 working days on 11-01 (10-30/31 are a weekend): the managers above, once.
    for day in ("2021-11-01", "2021-11-01", "2021-11-02"):
        run_task("sweep_warnings", today=day)
    barrier(app, org, robot, run_task, "2021-11-02")
    assert len(inbox.to("boss@example.gov.cn")) == 1 and len(inbox.to("chief@example.gov.cn")) == 1
    escalation = inbox.to("chief@example.gov.cn")[0].get_content()
    assert "红牌督办" in escalation and "3 个工作日" in escalation
    assert len(robot.texts("district")) == 1 and "红牌督办" in robot.texts("district")[0]
    # The sibling bureau's manager, mailbox and group never hear of it.
    assert inbox.to("other@example.gov.cn") == [] and inbox.to("sibling-box@example.gov.cn") == []
    assert robot.texts("sibling") == []
    # No more section posts or handler mail than before; every delivery went out.
    assert len(robot.texts("section")) == 2 and len(inbox.to("han@example.gov.cn")) == 2
    rows = {k: r for k, r in deliveries(app).items() if k.startswith(f"case:{case_id}:")}
    assert rows and all(r.sent_at is not None and r.attempts == 1 for r in rows.values())
    # Mail is plain UTF-8 text from the configured sender, with no rater data in it.
    mail = inbox.to("han@example.gov.cn")[1]
    assert mail["From"] == "hcp@example.gov.cn" and mail.get_content_charset() == "utf-8"


def test_failed_webhook_is_retried_and_the_workflow_goes_on(app, org, office, robot, inbox, run_task):
    case_id = bad_case(app, office["device"])
    robot.fail["/hook/section"] = 2  # answers 500 twice, then accepts
    run_task("sweep_warnings", today="2021-10-09")  # red: callback was due 10-08
    wait_for(lambda: robot.refused.count("/hook/section") >= 1, message="the first refused post")

    # The case is worked on while its notification is failing.
    assert act(app, case_id, "han", "verify", contacted=True) == "rectifying"
    assert act(app, case_id, "han", "rectify",
               measures={"cause": "窗口人手不足", "action": "增设窗口"}) == "feedback"

    wait_for(lambda: robot.texts("section"), timeout=60, message="the post after retries")
    assert robot.refused.count("/hook/section") == 2
    assert len(robot.texts("section")) == 1 and "红牌预警" in robot.texts("section")[0]
    key = f"case:{case_id}:callback:red:webhook:{office['section'].id}"
    wait_for(lambda: deliveries(app)[key].sent_at, message="sent_at on the delivery")
    row = deliveries(app)[key]
    assert row.attempts == 3 and row.last_error is None
    # The e-mails did not wait for the webhook and went out once each.
    assert len(inbox.to("han@example.gov.cn")) == 1 and len(inbox.to("sup@example.gov.cn")) == 1
    assert act(app, case_id, "han", "feedback", contacted=True, satisfied=True) == "closed"


def test_robot_refusal_in_a_200_answer_is_retried(app, org, robot, inbox, run_task):
    """WeCom/DingTalk answer 200 with a non-zero errcode when they refuse a message."""
    dept = org.department("d1")
    org.user("h1", "handler", dept)
    device, _ = org.device(dept)
    refusals = []

    class Refusing(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            refused = len(refusals) == 0
            refusals.append(refused)
            answer = b'{"errcode": 45009, "errmsg": "api freq out of limit"}' if refused else b'{"errcode":0}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        set_channels(app, dept, f"http://127.0.0.1:{server.server_address[1]}/robot/send?access_token=t")
        bad_case(app, device)
        run_task("sweep_warnings", today="2021-10-08")
        wait_for(lambda: all_sent(app, 1), timeout=60, message="the post after a refusal")
        assert refusals == [True, False]
        (row,) = deliveries(app).values()
        assert row.attempts == 2
    finally:
        server.shutdown()
        server.server_close()


def test_morning_digest_lists_a_handlers_cases_by_deadline(app, org, robot, inbox, run_task):
    dept = org.department("d1", "综合窗口科")
    han = org.user("han", "handler", dept)
    set_email(app, han, "han@example.gov.cn")
    device, _ = org.device(dept)
    set_channels(app, dept, robot.url("d1"), "d1-box@example.gov.cn")
    late = bad_case(app, device, "2021-09-01T10:00:00+08:00")      # closure due 2021-09-23
    act(app, late, "han", "verify", contacted=True)
    early = bad_case(app, device, "2021-10-08T10:00:00+08:00")     # callback due 2021-10-09
    middle = bad_case(app, device, "2021-09-30T10:00:00+08:00")    # callback due 2021-10-08
    done = bad_case(app, device, "2021-09-29T10:00:00+08:00")
    act(app, done, "han", "verify", contacted=True)
    act(app, done, "han", "rectify", measures={"cause": "c", "action": "a"})
    act(app, done, "han", "feedback", contacted=True, satisfied=True)

    run_task("morning_digest", today="2021-10-02")  # National Day: no digest
    run_task("sweep_warnings", today="2021-10-09")
    for _ in range(2):
        run_task("morning_digest", today="2021-10-09")  # the make-up Saturday is a working day
    wait_for(lambda: inbox.to("han@example.gov.cn") and robot.texts("d1"), message="the digest")
    barrier(app, org, robot, run_task, "2021-10-09")

    digests = [m for m in inbox.to("han@example.gov.cn") if "每日待办" in m["Subject"]]
    assert len(digests) == 1
    body = digests[0].get_content()
    assert re.findall(r"工单 (\d+)", body) == [str(i) for i in (late, middle, early)]
    assert "3 件未办结工单（2021-10-09）" in body and "【红牌】" in body
    posts = [t for t in robot.texts("d1") if "每日待办" in t]
    assert len(posts) == 1 and re.findall(r"工单 (\d+)", posts[0]) == [str(i) for i in (late, middle, early)]
    assert not any("每日待办" in m["Subject"] for m in inbox.to("d1-box@example.gov.cn"))
    keys = [k for k in deliveries(app) if k.startswith("digest:")]
    assert keys and all(k.startswith("digest:2021-10-09:") for k in keys)


# -- configuration -------------------------------------------------------------------

def test_beat_runs_the_sweep_and_the_digest_at_half_past_eight_shanghai(app):
    from workers.schedule import beat_schedule

    settings = app.config["HCP_SETTINGS"]
    schedule = beat_schedule(settings)
    assert schedule["sweep-warnings"] == {"task": "workers.tasks.sweep_warnings",
                                          "schedule": settings.warning_seconds}
    cron = schedule["morning-digest"]["schedule"]
    assert schedule["morning-digest"]["task"] == "workers.tasks.morning_digest"
    assert (cron.hour, cron.minute) == ({8}, {30})
    assert app.extensions["celery"].conf.timezone == "Asia/Shanghai"


def test_cli_sets_department_channels_and_user_email(app, org, query):
    from service.cli import admin

    org.department("d1")
    runner = app.test_cli_runner()
    result = runner.invoke(admin.departments, ["notify", "d1", "--webhook",
                                               "https://oapi.dingtalk.com/robot/send?access_token=abc",
                                               "--email", "box@example.gov.cn"])
    assert result.exit_code == 0, result.output
    assert "access_token" not in result.output  # the robot key is not echoed
    from models import Department
    row = query(lambda s: s.scalar(select(Department).where(Department.code == "d1")))
    assert (row.notify_webhook, row.notify_email) == (
        "https://oapi.dingtalk.com/robot/send?access_token=abc", "box@example.gov.cn")
    bad = runner.invoke(admin.departments, ["notify", "d1", "--webhook", "ftp://x"])
    assert bad.exit_code != 0 and "http" in bad.output
    cleared = runner.invoke(admin.departments, ["notify", "d1", "--webhook", ""])
    assert cleared.exit_code == 0
    assert query(lambda s: s.scalar(select(Department.notify_webhook).where(Department.code == "d1"))) is None

    added = runner.invoke(admin.users, ["add", "han", "--role", "handler", "--department", "d1",
                                        "--email", "han@example.gov.cn"], input="long-enough-pw\n")
    assert added.exit_code == 0, added.output
    assert query(lambda s: s.scalar(select(User.email).where(User.username == "han"))) == "han@example.gov.cn"
