"""The citizen's public pages: ``/r/{token}`` (an invitation, and ``/r/{token}/qr.svg``)
and ``/q/{code}`` (a window's hall QR, and ``/q/{code}/qr.svg`` to print).

Unknown tokens and codes are counted per client address: past GUESS_LIMIT a caller gets
429, so the 144-bit tokens cannot be searched for even slowly, nor the hall codes listed.
The invitation page sets no cookie; the hall page sets one (``hcp_qr``, path /q/) to tell
phones behind one address apart, and works without it.
"""
from __future__ import annotations

import io
import math
import re
import secrets
import time

import segno
from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from sqlalchemy import select

from models import LEVEL_LABELS, STAGE_LABELS, Device, Invitation
from models.types import utcnow
from service.auth import ratelimit
from models.clock import local_date
from service.extensions import db
from service.citizen import hall
from service.invitations import rate, tokens
from service.reasons import table as reasons

blp = Blueprint("citizen", __name__)
GUESS_LIMIT = "20/minute"


def _refuse(status: int, title: str, message: str, headers: dict | None = None) -> Response:
    html = render_template("citizen/notice.html", title=title, message=message)
    return Response(html, status=status, headers=headers or {}, mimetype="text/html")


def _unknown(message: str) -> Response:
    """The 404 page for an unknown token or hall code, or 429 past GUESS_LIMIT a minute."""
    settings = current_app.config["HCP_SETTINGS"]
    # ratelimit.hit fails open (and logs once a minute) when its store is down.
    reset_at = ratelimit.hit(ratelimit.limit(GUESS_LIMIT), 1, settings.instance, "token-guess",
                             request.remote_addr or "-")
    if reset_at is not None:
        retry = str(max(1, math.ceil(reset_at - time.time())))
        return _refuse(429, "请稍后再试", "尝试次数过多，请稍后再打开评价链接。", {"Retry-After": retry})
    return _refuse(404, "链接无效", message)


def find(token: str) -> Invitation | Response:
    """The invitation of ``token``, or the Chinese page to answer instead (404, 429)."""
    if len(token) == tokens.TOKEN_CHARS:
        invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == tokens.token_hash(token)))
        if invitation is not None:
            return invitation
    return _unknown("没有找到这个评价链接，请核对短信或回执上的链接。")


@blp.get("/r/<token>/qr.svg")
def qr(token: str):
    """The invitation's link (``?via=qr``, channel qrcode) as an SVG QR code for the receipt."""
    found = find(token)
    if isinstance(found, Response):
        return found
    out = io.BytesIO()
    segno.make(tokens.link(token, via="qr"), error="m").save(out, kind="svg", scale=6, border=2,
                                                               title="扫码评价")
    return Response(out.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})


def _via() -> str | None:
    via = request.values.get("via")
    return via if via in rate.VIA_CHANNELS else None


def _given(rating, options: dict) -> dict | None:
    if rating is None:
        return None
    return {"level": LEVEL_LABELS[rating.level], "at": local_date(rating.rated_at).isoformat(),
            "reasons": [options[c].label if c in options else c for c in rating.reasons or []],
            "comment": rating.comment, "default": rating.is_default}


def _page(invitation: Invitation, error: rate.NotAllowed | None = None, form: dict | None = None,
          status: int = 200) -> Response:
    where = rate.standing(db.session, invitation)
    project = invitation.project
    given = [r for r in (where.first, where.followup) if r is not None]
    options = reasons.labels(db.session, {c for r in given for c in r.reasons or []})
    if where.first is None and where.expired or (where.first is not None and where.first.is_default):
        title = "评价已截止"
    elif where.may_rate:
        title = "请对本次服务作出评价"
    elif where.may_follow_up:
        title = "已评价 · 可追评一次"
    else:
        title = "已评价"
    _, table = reasons.active(db.session)
    html = render_template(
        "citizen/rate.html", title=title, where=where, error=error, form=form or {},
        item=project.item.name, department=project.department.name, stage=STAGE_LABELS[invitation.stage],
        stage_date=local_date(invitation.stage_at).isoformat(),
        first=_given(where.first, options), followup=_given(where.followup, options),
        followup_until=local_date(where.followup_until).isoformat() if where.followup_until else None,
        levels=sorted(LEVEL_LABELS.items(), reverse=True), reasons=table, via=_via(),
        action=url_for("citizen.page", token=request.view_args["token"]))
    return Response(html, status=status, mimetype="text/html")


@blp.get("/r/<token>")
def page(token: str):
    """The invitation's page: the form, 已评价 with what was given (and 追评), or 评价已截止."""
    found = find(token)
    if isinstance(found, Response):
        return found
    return _page(found)


@blp.post("/r/<token>")
def submit(token: str):
    """Store the rating (or the follow-up) and show the page again (303, so a reload does not post)."""
    found = find(token)
    if isinstance(found, Response):
        return found
    raw_level = request.form.get("level", "")
    level = int(raw_level) if raw_level.isdigit() else None
    codes = [c for c in request.form.getlist("reasons") if c][:20]
    comment = request.form.get("comment", "")
    try:
        rate.submit(db.session, found, _via(), level, codes, comment, g.get("request_id"))
    except rate.NotAllowed as err:
        db.session.rollback()
        return _page(found, err, {"level": level, "reasons": codes, "comment": comment}, status=422)
    via = _via()
    return redirect(url_for("citizen.page", token=token, **({"via": via} if via else {})), code=303)


# ---------------------------------------------------------------- hall QR codes (扫码评价)

FORM_ID = re.compile(r"[A-Za-z0-9_-]{16,32}")
COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{22,64}")


def _device(code: str) -> Device | Response:
    device = hall.find(db.session, code)
    return device if device is not None else _unknown("没有找到这个评价二维码，请扫描窗口张贴的二维码。")


def _phone_cookie() -> tuple[str | None, str | None]:
    """(the cookie this phone sent, a new one to set) — one of them is None."""
    sent = request.cookies.get(hall.COOKIE, "")
    if COOKIE_VALUE.fullmatch(sent):
        return sent, None
    return None, secrets.token_urlsafe(16)


def _hall_page(device: Device, *, error=None, form=None, wait=None, done=False, status=200,
               headers=None) -> Response:
    _, table = reasons.active(db.session)
    html = render_template(
        "citizen/hall.html", title="感谢您的评价" if done else "请对本窗口的服务作出评价",
        department=device.department.name, window=device.window, done=done, wait=wait, error=error,
        form=form or {}, form_id=secrets.token_urlsafe(16), levels=sorted(LEVEL_LABELS.items(), reverse=True),
        reasons=table, action=url_for("citizen.hall_submit", code=device.qr_code))
    return Response(html, status=status, mimetype="text/html", headers=headers or {})


def _with_cookie(resp: Response, new: str | None) -> Response:
    if new is not None:  # a phone that keeps no cookie is still one address
        resp.set_cookie(hall.COOKIE, new, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=request.is_secure, path="/q/")
    return resp


@blp.get("/q/<code>")
def hall_page(code: str):
    """A window's fixed QR: the rating form, or a notice if this phone rated it just now."""
    found = _device(code)
    if isinstance(found, Response):
        return found
    sent, new = _phone_cookie()
    if request.args.get("done") == "1":
        return _with_cookie(_hall_page(found, done=True), new)
    until = hall.wait_until(db.session, found, hall.voter(request.remote_addr, sent or new))
    wait = hall.TooSoon(until).message if until else None
    return _with_cookie(_hall_page(found, wait=wait), new)


@blp.post("/q/<code>")
def hall_submit(code: str):
    """Store the window's rating (303 to the thanks), 422 with the form again, or 429 too soon."""
    found = _device(code)
    if isinstance(found, Response):
        return found
    sent, new = _phone_cookie()
    raw_level = request.form.get("level", "")
    level = int(raw_level) if raw_level.isdigit() and len(raw_level) == 1 else None
    codes = [c for c in request.form.getlist("reasons") if c][:20]
    comment = request.form.get("comment", "")
    form_id = request.form.get("form_id", "")
    if not FORM_ID.fullmatch(form_id):
        form_id = secrets.token_urlsafe(16)
    try:
        hall.submit(db.session, found, hall.voter(request.remote_addr, sent or new), f"qr-{found.id}-{form_id}",
                    level, codes, comment, g.get("request_id"))
    except hall.TooSoon as err:
        db.session.rollback()
        retry = str(max(1, math.ceil((err.until - utcnow()).total_seconds())))
        return _with_cookie(_hall_page(found, wait=err.message, status=429, headers={"Retry-After": retry}), new)
    except rate.NotAllowed as err:
        db.session.rollback()
        return _with_cookie(_hall_page(found, error=err, form={"level": level, "reasons": codes, "comment": comment},
                                       status=422), new)
    return _with_cookie(redirect(url_for("citizen.hall_page", code=code, done="1"), code=303), new)


@blp.get("/q/<code>/qr.svg")
def hall_qr(code: str):
    """The window's QR code to print (SVG): the link ``HCP_PUBLIC_URL/q/{code}``."""
    found = _device(code)
    if isinstance(found, Response):
        return found
    out = io.BytesIO()
    segno.make(hall.link(found), error="m").save(out, kind="svg", scale=8, border=2, title="扫码评价")
    return Response(out.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
