"""The reveal rule (service/cases/privacy_rules.py): who sees a rater whole, and the record."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Case, CaseEvent, User
from service.cases.privacy_rules import reveal_rater
from service.cases.workflow import ActionError
from tests.web_support import PHONE, build_team, make_case


@pytest.fixture
def team(org):
    return build_team(org)


def try_reveal(app, case_id, username):
    """(result or ActionError status, reveal events recorded) after a reveal attempt, committed."""
    from service.extensions import db

    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        try:
            result = reveal_rater(db.session, db.session.get(Case, case_id), user)
        except ActionError as err:
            result = err.status
        db.session.commit()
        events = db.session.scalars(select(CaseEvent).where(CaseEvent.action == "reveal")).all()
        return result, [(e.actor.username, e.from_status, e.to_status) for e in events]


@pytest.mark.parametrize("who,allowed", [
    ("handler", True),        # the assignee
    ("super", True),          # supervisor of the bureau above the case's section
    ("handler2", False),      # same section, not the assignee
    ("manager", False),       # managers see figures, not people
    ("other-super", False),   # supervisor of another department
    ("admin", False),
])
def test_only_assignee_and_subtree_supervisors(app, team, who, allowed):
    case_id = make_case(app, team.device)
    result, events = try_reveal(app, case_id, who)
    if allowed:
        assert result == {"name": "陈先生", "phone": PHONE}
        assert events == [(who, "assigned", "assigned")]
    else:
        assert result == 403 and events == []


def test_anonymous_rating_has_nothing_to_reveal(app, team):
    case_id = make_case(app, team.device, real_name=False)
    assert try_reveal(app, case_id, "handler") == (409, [])
