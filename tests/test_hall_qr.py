"""Hall QR codes (扫码评价, SPEC §7): a window's fixed QR opens /q/{code}; the phone rates
that window's service (channel qrcode, no application) with the reasons and comment rules
of the invitation page; one phone rates one window at most once per HCP_QR_MIN_MINUTES."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import Case, QrVoter, Rating
from models.types import utcnow
from tests.support import concurrently, wait_for


@pytest.fixture
def window(app, org, shell):
    """A hall QR at window 5 of 区市场监管局, made as the operator does: its page's address."""
    org.department("market", "区市场监管局")
    out = shell("qr", "add", "5号窗口扫码评价", "--department", "market", "--window", "5")
    url = out.stdout.strip()
    assert re.fullmatch(r"http://[^/]+/q/[2-9a-z]{8}", url), url
    return url.rsplit("/", 1)[1]


def ratings(query):
    return query(lambda s: s.scalars(select(Rating).order_by(Rating.id)).all())


def form_id(page) -> str:
    return re.search(r'name="form_id" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def test_the_window_page_rates_the_window(window, client, query, worker):
    page = client.get(f"/q/{window}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'lang="zh-CN"' in html
    assert "请对本窗口的服务作出评价" in html and "区市场监管局" in html and "5号窗口" in html
    assert "hcp_qr=" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    assert 'name="reasons"' in html  # the same reason options as the invitation page

    bare = client.post(f"/q/{window}", data={"level": "2", "form_id": form_id(page)})
    assert bare.status_code == 422 and "至少选择一项原因或填写意见" in bare.get_data(as_text=True)
    wrong = client.post(f"/q/{window}", data={"level": "2", "reasons": "off_att_warm", "form_id": form_id(page)})
    assert wrong.status_code == 422 and "不符" in wrong.get_data(as_text=True)
    assert ratings(query) == [] and query(lambda s: s.scalar(select(func.count()).select_from(QrVoter))) == 0

    fid = form_id(page)
    done = client.post(f"/q/{window}", data={"level": "2", "reasons": "off_att_rude", "comment": "等了很久",
                                            "form_id": fid})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/q/{window}?done=1")
    assert "感谢您的评价" in client.get(done.headers["Location"]).get_data(as_text=True)
    [rating] = ratings(query)
    assert (rating.channel, rating.window, rating.level, rating.reasons, rating.comment) == (
        "qrcode", "5", 2, ["off_att_rude"], "等了很久")
    assert rating.project_no is None and rating.invitation_id is None and not rating.real_name
    # a bad one becomes a case like any other (the worker routes it)
    wait_for(lambda: query(lambda s: s.scalar(select(func.count(Case.id)))) == 1, timeout=60,
             message="the bad QR rating's case")
    # the second tap of the same form is the same rating, not a refusal
    again = client.post(f"/q/{window}", data={"level": "2", "reasons": "off_att_rude", "form_id": fid})
    assert again.status_code == 303 and len(ratings(query)) == 1
    # the phone's address and cookie are kept only as a keyed hash
    [voter] = query(lambda s: s.scalars(select(QrVoter)).all())
    assert re.fullmatch(r"[0-9a-f]{64}", voter.voter) and "127.0.0.1" not in voter.voter


def test_one_rating_per_phone_and_window_per_min_minutes(app, window, client, clock, query):
    from flask.testing import FlaskClient

    start = utcnow()
    clock.set(start)
    first = client.get(f"/q/{window}")
    assert client.post(f"/q/{window}", data={"level": "5", "form_id": form_id(first)}).status_code == 303

    clock.set(start + timedelta(minutes=9))
    page = client.get(f"/q/{window}")
    assert "您刚刚已评价过本窗口" in page.get_data(as_text=True) and 'id="rate-form"' not in page.get_data(as_text=True)
    soon = client.post(f"/q/{window}", data={"level": "4", "form_id": "x" * 20})
    assert soon.status_code == 429 and soon.headers["Retry-After"] == "60"
    assert "1 分钟后" in soon.get_data(as_text=True)
    assert len(ratings(query)) == 1

    # another phone behind the same address (the hall's Wi-Fi) has a cookie of its own
    other = FlaskClient(app, app.response_class)
    other_page = other.get(f"/q/{window}")
    assert other.post(f"/q/{window}", data={"level": "4", "form_id": form_id(other_page)}).status_code == 303
    assert len(ratings(query)) == 2

    clock.set(start + timedelta(minutes=10))  # HCP_QR_MIN_MINUTES (10) on: the first phone again
    again = client.get(f"/q/{window}")
    assert client.post(f"/q/{window}", data={"level": "3", "form_id": form_id(again)}).status_code == 303
    assert [r.level for r in ratings(query)] == [5, 4, 3]


def test_a_phone_without_cookies_is_its_address(window, client, query):
    client.get(f"/q/{window}")
    client.delete_cookie("hcp_qr", path="/q/")
    assert client.post(f"/q/{window}", data={"level": "5", "form_id": "a" * 20}).status_code == 303
    assert client.post(f"/q/{window}", data={"level": "5", "form_id": "b" * 20}).status_code == 429
    assert len(ratings(query)) == 1


def test_concurrent_taps_of_one_phone_store_one_rating(app, window, client, query):
    cookie = client.get(f"/q/{window}").headers["Set-Cookie"].split(";")[0].split("=", 1)[1]

    def tap():
        import secrets

        with app.test_client() as c:
            c.set_cookie("hcp_qr", cookie, path="/q/")
            return c.post(f"/q/{window}", data={"level": "5", "form_id": secrets.token_urlsafe(16)}).status_code
    codes = concurrently(4, tap)
    assert sorted(codes) == [303, 429, 429, 429]
    assert len(ratings(query)) == 1


def test_unknown_and_disabled_codes_are_chinese_404s(app, window, client, query, shell):
    assert client.get(f"/q/{window}/qr.svg").mimetype == "image/svg+xml"
    gone = client.get("/q/zzzzzzzz")
    assert gone.status_code == 404 and "没有找到这个评价二维码" in gone.get_data(as_text=True)
    assert client.post("/q/zzzzzzzz", data={"level": "5"}).status_code == 404
    listed = shell("qr", "list").stdout
    assert f"/q/{window}" in listed and "5号窗口扫码评价" in listed and "active" in listed
    device_id = listed.split("\t", 1)[0]
    shell("devices", "disable", device_id)
    assert client.get(f"/q/{window}").status_code == 404


def test_devices_add_qrcode_gives_a_hall_page_and_default_is_reserved(app, org, shell):
    org.department("tax", "区税务局")
    out = shell("devices", "add", "大厅扫码", "--department", "tax", "--channel", "qrcode")
    assert re.search(r"its hall QR page: http://[^ ]+/q/[2-9a-z]{8}", out.stderr)
    assert out.stdout.strip()  # the device key, as for every device
    refused = shell("devices", "add", "x", "--department", "tax", "--channel", "default", check=False)
    assert refused.returncode == 2 and "default" in refused.stderr
