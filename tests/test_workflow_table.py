"""The case state machine, cell by cell (SPEC §2): every (state × action × role).

The expected matrix below is written out by hand from the SPEC, not derived from
``workflow.TRANSITIONS``, so a wrong or missing row in the table fails a cell here.
Each cell runs ``workflow.apply`` on a real case in the test database and rolls back.
"""
from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from models import Case, CaseEvent, Department, Device, Rating, User
from models.types import utcnow
from service.cases import workflow
from service.cases.workflow import ActionError

STATES = ["unassigned", "assigned", "rectifying", "extension_review", "invalid_review", "explain_review",
          "feedback", "closed"]
ACTIONS = ["assign", "verify", "claim_invalid", "propose_explain", "request_extension", "approve", "reject",
           "rectify", "feedback", "reopen"]
ROLES = ["handler", "supervisor", "manager", "admin"]

# A cell is the state the case moves to (``state/outcome`` also checks the outcome after
# the action; ``none`` means no outcome), or 403 for a role that may not. Every (state,
# action) not listed is 409 for every role.
MATRIX = """
state           action           handler                supervisor             manager          admin
unassigned      assign           403                    assigned               assigned         403
assigned        assign           403                    assigned               assigned         403
assigned        verify           rectifying             rectifying             403              403
assigned        claim_invalid    invalid_review         invalid_review         403              403
assigned        propose_explain  explain_review         explain_review         403              403
rectifying      assign           403                    rectifying             rectifying       403
rectifying      rectify          feedback/rectified     feedback/rectified     403              403
rectifying      claim_invalid    invalid_review         invalid_review         403              403
rectifying      propose_explain  explain_review         explain_review         403              403
rectifying      request_extension extension_review      403                    403              403
extension_review approve         403                    rectifying/none        403              403
extension_review reject          403                    rectifying/none        403              403
invalid_review  approve          403                    closed/invalid         403              403
invalid_review  reject           403                    rectifying/none        403              403
explain_review  approve          403                    feedback/explained     403              403
explain_review  reject           403                    rectifying/none        403              403
feedback        assign           403                    feedback/rectified     feedback/rectified 403
feedback        feedback         closed/rectified       closed/rectified       403              403
closed          reopen           403                    rectifying/none        rectifying/none  403
"""


def _parse(matrix: str) -> dict[tuple[str, str, str], str]:
    lines = [line.split() for line in matrix.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    cells = {}
    for state, action, *by_role in rows:
        for role, cell in zip(header[2:], by_role):
            cells[(state, action, role)] = cell
    return cells


EXPECTED = _parse(MATRIX)

# Valid data for each action, so a refusal in a cell can only come from state or role.
GOOD_DATA = {
    "assign": {"assignee": "h2"},
    "verify": {"contacted": True},
    "claim_invalid": {"reason": "评价人误操作"},
    "propose_explain": {"reason": "诉求超出法定职权"},
    "approve": {},
    "reject": {},
    "rectify": {"measures": {"cause": "材料清单未一次性告知", "action": "窗口张贴清单并培训"}},
    "feedback": {"contacted": True, "satisfied": True},
    "reopen": {"reason": "评价人再次投诉"},
    "request_extension": {"working_days": 5, "reason": "需协调其他部门"},
}
# What a case in each state carries, as routing and earlier actions would have left it.
STATE_FIELDS = {
    "unassigned": {"assignee": None},
    "extension_review": {"claimed_by": "s0", "extension_days": 5},
    "invalid_review": {"claimed_by": "s0"},
    "explain_review": {"claimed_by": "s0"},
    "feedback": {"outcome": "rectified"},
    "closed": {"outcome": "rectified", "closed_at": True},
}


def fields_real_name(override: dict) -> bool:
    """Cases are of real-name raters unless the test asks for an anonymous one."""
    return override.get("real_name", True)


class World:
    """One department with staff of every role and cases made in any state, in one session."""

    def __init__(self, session):
        self.session = session
        dept = Department(code="sec", name="登记注册科", path="")
        session.add(dept)
        session.flush()
        dept.path = f"/{dept.id}/"
        self.dept = dept
        self.users = {}
        for name, role in [("h", "handler"), ("h2", "handler"), ("s", "supervisor"),
                           ("s0", "supervisor"), ("m", "manager"), ("a", "admin")]:
            self.users[name] = User(username=name, password_hash="-", role=role, department=dept)
            session.add(self.users[name])
        self.device = Device(name="kiosk", department=dept, channel="hall_terminal", key_hash=uuid.uuid4().hex)
        session.add(self.device)
        session.flush()

    def actor(self, role: str) -> User:
        # The handler acting is the case's assignee; the supervisor is not the claimant.
        return self.users[{"handler": "h", "supervisor": "s", "manager": "m", "admin": "a"}[role]]

    def case(self, state: str, **override) -> Case:
        now = utcnow()
        rating = Rating(client_id=str(uuid.uuid4()), body_hash="-", device=self.device, department=self.dept,
                        channel="hall_terminal", level=1, negative=True, rated_at=now,
                        rated_date=now.date(), received_at=now, real_name=fields_real_name(override))
        self.session.add(rating)
        self.session.flush()
        override.pop("real_name", None)
        fields = {"assignee": "h", **STATE_FIELDS.get(state, {}), **override}
        case = Case(rating_id=rating.id, department_id=self.dept.id, status=state,
                    assignee_id=self.users[fields["assignee"]].id if fields["assignee"] else None,
                    claimed_by_id=self.users[fields["claimed_by"]].id if fields.get("claimed_by") else None,
                    outcome=fields.get("outcome"), closed_at=now if fields.get("closed_at") else None,
                    extension_days=fields.get("extension_days"),
                    callback_due=date(2026, 11, 23), close_due=date(2026, 12, 11))
        self.session.add(case)
        self.session.flush()
        return case

    def events(self, case: Case) -> int:
        self.session.flush()
        return self.session.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.case_id == case.id))


@pytest.fixture
def world(app):
    from service.extensions import db

    with app.app_context():
        yield World(db.session)
        db.session.rollback()


def test_matrix_names_every_state_action_and_role():
    from models import ROLES as MODEL_ROLES, STATUS_LABELS

    assert STATES == list(STATUS_LABELS) and set(ACTIONS) == set(workflow.ACTIONS)
    assert ROLES == list(MODEL_ROLES)
    assert {(s, a) for s, a, _ in EXPECTED} <= {(s, a) for s in STATES for a in ACTIONS}


@pytest.mark.parametrize("state,action,role", [(s, a, r) for s in STATES for a in ACTIONS for r in ROLES],
                         ids=lambda v: v)
def test_cell(world, state, action, role):
    case = world.case(state)
    before = (case.status, case.outcome, case.version)
    expected = EXPECTED.get((state, action, role), "409")
    try:
        event = workflow.apply(world.session, case, world.actor(role), action, dict(GOOD_DATA[action]))
    except ActionError as err:
        assert str(err.status) == expected, f"{role} {action} in {state}: {err.message}"
        assert world.events(case) == 0, "a refused action leaves no history"
        assert (case.status, case.outcome) == before[:2]
        return
    assert not expected.isdigit(), f"{role} {action} in {state} should be {expected}, it was allowed"
    to, _, outcome = expected.partition("/")
    assert case.status == to
    if outcome:
        assert case.outcome == (None if outcome == "none" else outcome)
    assert (event.action, event.from_status, event.to_status, event.actor_id) == \
        (action, state, to, world.actor(role).id)
    assert world.events(case) == 1
    world.session.flush()
    assert case.version == before[2] + 1, "every action bumps the version"


def test_wrong_state_message_names_the_allowed_actions(world):
    case = world.case("rectifying")
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, case, world.actor("handler"), "verify", {"contacted": True})
    assert err.value.status == 409
    assert err.value.reason == "state"
    assert err.value.allowed == ["assign", "claim_invalid", "propose_explain", "request_extension", "rectify"]
    assert "allowed actions: assign, claim_invalid, propose_explain, request_extension, rectify" in err.value.message


def test_closed_case_names_reopen(world):
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, world.case("closed"), world.actor("handler"), "feedback",
                       GOOD_DATA["feedback"])
    assert err.value.status == 409 and err.value.allowed == ["reopen"]


@pytest.mark.parametrize("action", ["verify", "claim_invalid", "propose_explain"])
def test_a_handler_acts_only_on_their_own_case(world, action):
    case = world.case("assigned", assignee="h2")
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, case, world.users["h"], action, GOOD_DATA[action])
    assert err.value.status == 403
    assert workflow.actions_for(case, world.users["h"]) == []
    assert workflow.actions_for(case, world.users["h2"]) == ["verify", "claim_invalid", "propose_explain"]


@pytest.mark.parametrize("state,claim", [("assigned", "claim_invalid"), ("rectifying", "propose_explain")])
def test_four_eyes_a_supervisor_never_approves_their_own_claim(world, state, claim):
    case = world.case(state)
    supervisor = world.users["s"]
    workflow.apply(world.session, case, supervisor, claim, GOOD_DATA[claim])
    assert case.claimed_by_id == supervisor.id
    assert "approve" not in workflow.actions_for(case, supervisor)
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, case, supervisor, "approve")
    assert (err.value.status, err.value.reason) == (403, "four_eyes")
    # rejecting one's own claim withdraws it; that needs no second pair of eyes
    assert "reject" in workflow.actions_for(case, supervisor)
    other = world.users["s0"]
    assert "approve" in workflow.actions_for(case, other)
    event = workflow.apply(world.session, case, other, "approve")
    assert case.claimed_by_id is None and event.data["claimed_by_id"] == supervisor.id


BAD_DATA = [  # state, action, data, the field named, the message (shown to the caller)
    ("assigned", "verify", {}, "contacted", "contacted must be true or false"),
    ("assigned", "verify", {"contacted": "yes"}, "contacted", "contacted must be true or false"),
    ("assigned", "verify", {"contacted": 1}, "contacted", "contacted must be true or false"),
    ("assigned", "claim_invalid", {}, "reason", "reason must not be empty"),
    ("assigned", "claim_invalid", {"reason": "   "}, "reason", "reason must not be empty"),
    ("rectifying", "propose_explain", {"reason": None}, "reason", "reason must not be empty"),
    ("rectifying", "rectify", {}, "measures", "measures must give the cause and the action taken"),
    ("rectifying", "rectify", {"measures": "已整改"}, "measures", "measures must give the cause and the action taken"),
    ("rectifying", "rectify", {"measures": {"cause": "", "action": "培训"}}, "measures.cause",
     "measures.cause must not be empty"),
    ("rectifying", "rectify", {"measures": {"cause": "态度差"}}, "measures.action",
     "measures.action must not be empty"),
    ("feedback", "feedback", {"satisfied": True}, "contacted", "contacted must be true or false"),
    ("feedback", "feedback", {"contacted": True, "satisfied": "maybe"}, "satisfied",
     "satisfied must be true or false or null"),
    ("closed", "reopen", {}, "reason", "reason must not be empty"),
    ("unassigned", "assign", {}, "assignee", "assignee must not be empty"),
    ("unassigned", "assign", {"assignee": "nobody"}, "assignee", "nobody is not an active handler"),
    # a manager does not handle cases
    ("unassigned", "assign", {"assignee": "m"}, "assignee", "m is not an active handler"),
]


@pytest.mark.parametrize("state,action,data,field,message", BAD_DATA,
                         ids=[f"{a}-{f}-{i}" for i, (_, a, _, f, _) in enumerate(BAD_DATA)])
def test_bad_data_is_422_naming_the_field(world, state, action, data, field, message):
    case = world.case(state)
    role = "supervisor" if action in ("assign", "reopen") else "handler"
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, case, world.actor(role), action, data)
    assert (err.value.status, err.value.field, err.value.message) == (422, field, message)
    assert case.status == state and world.events(case) == 0


def test_rectify_keeps_the_measures_in_the_history(world):
    case = world.case("rectifying")
    event = workflow.apply(world.session, case, world.actor("handler"), "rectify",
                           {"measures": {"cause": " 等候久 ", "action": "增开窗口"}})
    assert event.data == {"measures": {"cause": "等候久", "action": "增开窗口"}}


def test_unknown_action_is_422(world):
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, world.case("assigned"), world.actor("handler"), "close")
    assert (err.value.status, err.value.field) == (422, "action")
    assert err.value.message == str(err.value) == ("unknown action close; one of assign, verify, claim_invalid, "
                                                   "propose_explain, request_extension, approve, reject, rectify, "
                                                   "feedback, reopen")


def test_feedback_may_leave_satisfaction_unknown(world):
    case = world.case("feedback")
    workflow.apply(world.session, case, world.actor("handler"), "feedback", {"contacted": False})
    assert case.status == "closed" and case.satisfied is None and case.contacted is False


def test_assignee_must_be_able_to_see_the_case(world):
    """A handler of a sub-department cannot see a case of the department above: refused."""
    session = world.session
    child = Department(code="child", name="下级", parent=world.dept, path="")
    session.add(child)
    session.flush()
    child.path = f"{world.dept.path}{child.id}/"
    below = User(username="below", password_hash="-", role="handler", department=child)
    session.add(below)
    session.flush()
    with pytest.raises(ActionError) as err:
        workflow.apply(session, world.case("unassigned"), world.actor("supervisor"), "assign",
                       {"assignee": "below"})
    assert (err.value.status, err.value.field) == (422, "assignee")
    assert err.value.message == "below works outside this case's department"
    # ...but a case of the sub-department may go to a handler of the department above
    sub_case = world.case("unassigned")
    sub_case.department_id = child.id
    workflow.apply(session, sub_case, world.actor("supervisor"), "assign", {"assignee": "h2"})
    assert sub_case.status == "assigned" and sub_case.assignee_id == world.users["h2"].id


def test_reopen_clears_the_outcome_and_closure(world):
    case = world.case("closed", outcome="invalid")
    workflow.apply(world.session, case, world.actor("manager"), "reopen", {"reason": "复核发现问题"})
    assert (case.status, case.outcome, case.closed_at) == ("rectifying", None, None)
    assert case.claimed_by_id is None  # reopening claims nothing for review


def test_stale_version_is_409(world):
    case = world.case("assigned")
    world.session.flush()
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, case, world.actor("handler"), "verify", {"contacted": True},
                       expected_version=case.version - 1)
    assert err.value.status == 409 and world.events(case) == 0
    workflow.apply(world.session, case, world.actor("handler"), "verify", {"contacted": True},
                   expected_version=case.version)
    assert case.status == "rectifying"


def test_history_records_who_when_from_to_and_note(world):
    case = world.case("assigned")
    event = workflow.apply(world.session, case, world.actor("handler"), "verify",
                           {"contacted": True, "note": "  电话回访，评价人确认  "})
    assert (event.from_status, event.to_status, event.note) == ("assigned", "rectifying", "电话回访，评价人确认")
    assert event.at is not None and event.data == {"contacted": True}
    event = workflow.apply(world.session, case, world.actor("handler"), "claim_invalid", {"reason": "误评"})
    assert event.note == "误评"  # the reason stands in for an absent note


REFUSALS = [
    # (state, actor, action, data, reason)
    ("rectifying", "h", "verify", {"contacted": True}, "state"),
    ("assigned", "m", "verify", {"contacted": True}, "role"),
    ("assigned", "h2", "verify", {"contacted": True}, "not_assignee"),
    ("assigned", "h", "claim_invalid", {}, "field"),
]


@pytest.mark.parametrize("state,actor,action,data,reason", REFUSALS, ids=[r[-1] for r in REFUSALS])
def test_refusals_are_typed(world, state, actor, action, data, reason):
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, world.case(state), world.users[actor], action, data)
    assert err.value.reason == reason and err.value.status == workflow.REASONS[reason]


def test_stale_refusal_is_typed(world):
    case = world.case("assigned")
    world.session.flush()
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, case, world.actor("handler"), "verify", {"contacted": True},
                       expected_version=case.version + 1)
    assert (err.value.reason, err.value.status) == ("stale", 409)


def test_anonymous_case_is_verified_without_contacted(world):
    case = world.case("assigned", real_name=False)
    event = workflow.apply(world.session, case, world.actor("handler"), "verify", {})
    assert case.status == "rectifying" and case.contacted is None and event.data == {"anonymous": True}


def test_anonymous_case_is_closed_by_feedback_without_contacted(world):
    case = world.case("feedback", real_name=False)
    event = workflow.apply(world.session, case, world.actor("handler"), "feedback", {"satisfied": None})
    assert (case.status, case.contacted, event.data) == ("closed", False, {"contacted": False, "satisfied": None})


def test_extension_moves_the_closure_deadline_by_working_days_once(world):
    case = world.case("rectifying", assignee="h")
    case.close_due = date(2021, 9, 30)  # the National Day holiday follows
    handler, supervisor = world.users["h"], world.users["s"]
    workflow.apply(world.session, case, handler, "request_extension", {"working_days": 2, "reason": "需会商"})
    assert (case.status, case.extension_days, case.claimed_by_id) == ("extension_review", 2, handler.id)
    workflow.apply(world.session, case, supervisor, "approve")
    assert case.status == "rectifying" and case.close_due == date(2021, 10, 9)  # 10-08, 10-09 (调休)
    assert case.extended_at is not None
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, case, handler, "request_extension", {"working_days": 1, "reason": "再延"})
    assert err.value.reason == "state"
    assert "request_extension" not in workflow.actions_for(case, handler)


def test_rejected_extension_leaves_the_deadline(world):
    case = world.case("rectifying")
    due = case.close_due
    workflow.apply(world.session, case, world.users["h"], "request_extension", {"working_days": 3, "reason": "x"})
    workflow.apply(world.session, case, world.users["s"], "reject")
    assert (case.status, case.close_due, case.extension_days, case.extended_at) == ("rectifying", due, None, None)


def test_a_supervisor_may_not_approve_their_own_extension(world):
    supervisor = world.users["s"]
    case = world.case("rectifying", assignee="s")
    workflow.apply(world.session, case, supervisor, "request_extension", {"working_days": 3, "reason": "x"})
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, case, supervisor, "approve")
    assert err.value.reason == "four_eyes"
    workflow.apply(world.session, case, world.users["s0"], "approve")
    assert case.status == "rectifying" and case.extended_at is not None


@pytest.mark.parametrize("days", [0, 16, "3", None, True])
def test_extension_days_are_1_to_15(world, days):
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, world.case("rectifying"), world.users["h"], "request_extension",
                       {"working_days": days, "reason": "x"})
    assert (err.value.status, err.value.field) == (422, "working_days")


def test_each_refusal_says_why_in_the_words_the_api_returns(world):
    """The API answers a refusal's ``message`` beside its reason: each says what was wrong."""
    def refusal(case, actor, action, data=None, **kw) -> ActionError:
        with pytest.raises(ActionError) as err:
            workflow.apply(world.session, case, world.users[actor], action, data or GOOD_DATA[action], **kw)
        return err.value

    err = refusal(world.case("assigned"), "m", "verify")
    assert (err.reason, err.message) == ("role", "a manager may not verify; handler or supervisor only")
    err = refusal(world.case("assigned", assignee="h2"), "h", "verify")
    assert (err.reason, err.message) == ("not_assignee", "only the assigned handler may act on this case")
    err = refusal(world.case("invalid_review", claimed_by="s"), "s", "approve")
    assert (err.reason, err.message) == ("four_eyes", "a supervisor may not approve their own request")
    case = world.case("rectifying")
    case.extended_at = utcnow()
    err = refusal(case, "h", "request_extension")
    assert (err.reason, err.message, err.allowed) == ("state", "this case has had its one extension already", [])
    case = world.case("assigned")
    world.session.flush()
    err = refusal(case, "h", "verify", expected_version=case.version + 1)
    assert (err.reason, err.message) == (
        "stale", f"the case has changed since you loaded it (version {case.version + 1}, now {case.version}); "
                 "reload and try again")
    err = refusal(world.case("closed"), "h", "feedback")
    assert err.message == ("feedback is not allowed in state closed (已办结); allowed actions: reopen")


def test_the_history_and_the_case_keep_what_each_action_gave(world):
    """assign and request_extension record their details; verify records the contact."""
    case = world.case("assigned")
    event = workflow.apply(world.session, case, world.users["s"], "assign", {"assignee": "h2"})
    assert event.data == {"assignee": "h2"} and case.assignee_id == world.users["h2"].id
    at = utcnow()
    event = workflow.apply(world.session, case, world.users["h2"], "verify", {"contacted": True}, now=at)
    assert (case.contacted, case.verified_at, event.data) == (True, at, {"contacted": True})
    case = world.case("assigned")
    workflow.apply(world.session, case, world.users["h"], "verify", {"contacted": False})
    assert case.contacted is False
    case = world.case("rectifying")
    event = workflow.apply(world.session, case, world.users["h"], "request_extension",
                           {"working_days": 5, "reason": " 需协调其他部门 "})
    assert event.data == {"working_days": 5, "reason": "需协调其他部门"}


@pytest.mark.parametrize("days", [1, 15])
def test_an_extension_of_1_or_15_working_days_is_accepted(world, days):
    case = world.case("rectifying")
    workflow.apply(world.session, case, world.users["h"], "request_extension", {"working_days": days, "reason": "x"})
    assert (case.status, case.extension_days) == ("extension_review", days)


def test_a_bad_extension_length_says_the_range(world):
    with pytest.raises(ActionError) as err:
        workflow.apply(world.session, world.case("rectifying"), world.users["h"], "request_extension",
                       {"working_days": 16, "reason": "x"})
    assert err.value.message == "working_days must be a whole number from 1 to 15"


def test_the_history_of_an_extension_a_rejected_claim_and_each_reason(world):
    """What the history keeps of an extension approved or rejected, a claim rejected, and a reason given."""
    handler, supervisor = world.users["h"], world.users["s"]
    case = world.case("rectifying")
    case.close_due = date(2021, 9, 30)  # the National Day holiday follows
    workflow.apply(world.session, case, handler, "request_extension", {"working_days": 2, "reason": "需会商"})
    event = workflow.apply(world.session, case, supervisor, "approve")
    assert event.data == {"working_days": 2, "close_due_before": "2021-09-30", "close_due": "2021-10-09",
                          "claimed_by_id": handler.id}
    case = world.case("rectifying")
    workflow.apply(world.session, case, handler, "request_extension", {"working_days": 3, "reason": "x"})
    event = workflow.apply(world.session, case, supervisor, "reject")
    assert event.data == {"working_days": 3, "claimed_by_id": handler.id} and case.extension_days is None
    case = world.case("invalid_review")  # claimed by s0
    event = workflow.apply(world.session, case, supervisor, "reject")
    assert event.data == {"claimed_by_id": world.users["s0"].id}
    for state, action, actor in [("assigned", "claim_invalid", handler), ("rectifying", "propose_explain", handler),
                                 ("closed", "reopen", supervisor)]:
        event = workflow.apply(world.session, world.case(state), actor, action, {"reason": " 评价人再次投诉 "})
        assert event.data == {"reason": "评价人再次投诉"}, action


def test_feedback_keeps_an_earlier_contact_and_records_the_answer(world):
    """A rater reached at verification stays contacted when the feedback call does not get through."""
    case = world.case("assigned")
    workflow.apply(world.session, case, world.users["h"], "verify", {"contacted": True})
    workflow.apply(world.session, case, world.users["h"], "rectify", GOOD_DATA["rectify"])
    event = workflow.apply(world.session, case, world.users["h"], "feedback", {"contacted": False, "satisfied": True})
    assert (case.status, case.contacted, case.satisfied) == ("closed", True, True)
    assert event.data == {"contacted": False, "satisfied": True}
    case = world.case("feedback", real_name=False)
    event = workflow.apply(world.session, case, world.users["h"], "feedback", {"contacted": True, "satisfied": False})
    assert (case.contacted, case.satisfied, event.data) == (True, False, {"contacted": True, "satisfied": False})


def test_only_the_closing_action_sets_closed_at_and_owes_the_result_upstream(world):
    """Closing stamps ``closed_at`` and queues the case's 上报 record in the same transaction; nothing before."""
    from models import OutboxRecord

    def owed(case):
        world.session.flush()
        return world.session.scalars(select(OutboxRecord.payload).where(OutboxRecord.case_id == case.id)).all()

    case = world.case("rectifying")
    workflow.apply(world.session, case, world.users["h"], "rectify", GOOD_DATA["rectify"])
    assert (case.status, case.closed_at, owed(case)) == ("feedback", None, [])
    at = utcnow()
    workflow.apply(world.session, case, world.users["h"], "feedback", {"contacted": True, "satisfied": True}, now=at)
    assert (case.status, case.closed_at) == ("closed", at)
    assert [(p["outcome"], p["closed_at"]) for p in owed(case)] == [("rectified", at.isoformat())]
