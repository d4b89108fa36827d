"""The citizen's page /r/{token} (SPEC §7): one rating per application and stage, then
已评价 and one 追评 within HCP_FOLLOWUP_DAYS, 评价已截止 after expiry; no cookies needed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from models import Case, InsightTerm, Invitation, Rating
from models.types import utcnow
from tests.support import bearer, concurrently, wait_for
from tests.test_invitations import recent


@pytest.fixture
def invited(app, org, client):
    """An application done an hour ago, its invitation's token, and the ids to look at."""
    from service.clients.registry import add_client
    from service.extensions import db

    district = org.department("district", "区政务服务中心")
    market = org.department("market", "区市场监管局", parent=district)
    org.item("license", market)
    _, key = org._build(lambda: add_client("审批系统", "approval", db.session.merge(market)))

    def make(no: str) -> str:
        assert client.put(f"/api/v1/projects/{no}", json=recent("done"), headers=bearer(key)).status_code == 201
        url = client.get(f"/api/v1/projects/{no}/invitation", headers=bearer(key)).get_json()["url"]
        return url.rsplit("/", 1)[1]
    return make


def ratings(query):
    return query(lambda s: s.scalars(select(Rating).order_by(Rating.id)).all())


def test_rate_then_follow_up_once(app, worker, client, invited, query):
    token = invited("P-1")
    page = client.get(f"/r/{token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "请对本次服务作出评价" in html and "license" in html
    assert "区市场监管局" in html and 'lang="zh-CN"' in html
    assert "Set-Cookie" not in page.headers  # works without cookies

    refused = client.post(f"/r/{token}", data={"level": "2", "via": "qr"})
    assert refused.status_code == 422 and "至少选择一项原因或填写意见" in refused.get_data(as_text=True)
    wrong = client.post(f"/r/{token}", data={"level": "2", "reasons": "off_att_warm"})
    assert wrong.status_code == 422 and "不符" in wrong.get_data(as_text=True)
    assert ratings(query) == []

    done = client.post(f"/r/{token}", data={"level": "2", "reasons": "off_att_rude", "via": "qr",
                                            "comment": "营业执照材料说不清"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/r/{token}?via=qr")
    [first] = ratings(query)
    assert (first.channel, first.level, first.project_no, first.assess_number, first.reasons) == (
        "qrcode", 2, "P-1", 1, ["off_att_rude"])
    assert first.real_name and first.rater_phone_masked == "138******78" and first.staff_no == "A01"
    assert first.invitation_id is not None and not first.is_default
    case = wait_for(lambda: query(lambda s: s.scalar(select(Case).where(Case.rating_id == first.id))),
                    timeout=60, message="the bad rating's case")
    assert case.status in ("assigned", "unassigned")
    # the page's rating starts the same tasks as a device's: its words reach the hot spots
    wait_for(lambda: query(lambda s: s.scalar(select(func.count()).select_from(InsightTerm)
                                              .where(InsightTerm.term == "营业执照"))),
             timeout=60, message="the worker counted the page's comment")

    shown = client.get(f"/r/{token}").get_data(as_text=True)
    assert "已评价" in shown and "不满意" in shown and "态度生硬" in shown and "提交追评" in shown

    again = client.post(f"/r/{token}", data={"level": "5", "reasons": "off_att_warm"})
    assert again.status_code == 303
    follow = ratings(query)[1]
    assert (follow.assess_number, follow.followup_of, follow.channel, follow.level) == (2, first.id, "sms", 5)
    third = client.post(f"/r/{token}", data={"level": "4"})
    assert third.status_code == 422 and "已评价过" in third.get_data(as_text=True)
    assert len(ratings(query)) == 2
    final = client.get(f"/r/{token}").get_data(as_text=True)
    assert "您的追评" in final and "提交" not in final


def test_a_rating_and_its_follow_up_carry_the_invitation(client, invited, query):
    token = invited("P-5")
    assert client.post(f"/r/{token}", data={"level": "4"}).status_code == 303
    assert client.post(f"/r/{token}", data={"level": "5"}).status_code == 303
    first, follow = ratings(query)
    assert first.invitation_id is not None and follow.invitation_id == first.invitation_id
    assert (first.assess_number, first.followup_of, first.is_default) == (1, None, False)
    assert (follow.assess_number, follow.followup_of, follow.is_default) == (2, first.id, False)


def test_follow_up_window_and_expiry(app, client, invited, query):
    from service.extensions import db

    token = invited("P-2")
    assert client.post(f"/r/{token}", data={"level": "4"}).status_code == 303
    days = app.config["HCP_SETTINGS"].followup_days
    with app.app_context():  # the first rating made longer ago than the follow-up window
        db.session.execute(update(Rating).values(rated_at=utcnow() - timedelta(days=days, minutes=1)))
        db.session.commit()
    page = client.get(f"/r/{token}").get_data(as_text=True)
    assert "已评价" in page and "提交追评" not in page
    assert client.post(f"/r/{token}", data={"level": "5"}).status_code == 422

    late = invited("P-3")
    with app.app_context():
        db.session.execute(update(Invitation).where(Invitation.id != ratings(query)[0].invitation_id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    page = client.get(f"/r/{late}")
    assert page.status_code == 200 and "评价已截止" in page.get_data(as_text=True)
    assert client.post(f"/r/{late}", data={"level": "5"}).status_code == 422
    assert len(ratings(query)) == 1
    state = client.get("/api/v1/projects/P-3/invitation")
    assert state.status_code == 401  # (the state itself is asserted in test_invitations)


def test_one_rating_under_concurrent_submits(app, invited, query):
    token = invited("P-4")
    statuses = concurrently(6, lambda: app.test_client().post(f"/r/{token}", data={"level": "5"}).status_code)
    assert 500 not in statuses and statuses.count(303) >= 1
    assert query(lambda s: s.scalar(select(func.count(Rating.id)).where(Rating.assess_number == 1))) == 1


def test_unknown_token_page(client):
    resp = client.get("/r/" + "B" * 24)
    assert resp.status_code == 404 and "链接无效" in resp.get_data(as_text=True)
    assert client.post("/r/nope", data={"level": "5"}).status_code == 404
