"""``/r/{token}``: the invitation's page and ``/r/{token}/qr.svg``, public, no cookies needed.

Unknown tokens are counted per client address: past GUESS_LIMIT a caller gets 429, so
the 144-bit tokens cannot be searched for even slowly.
"""
from __future__ import annotations

import io
import math
import time

import segno
from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from sqlalchemy import select

from models import LEVEL_LABELS, STAGE_LABELS, Invitation
from service.auth import ratelimit
from models.clock import local_date
from service.extensions import db
from service.invitations import rate, tokens
from service.reasons import table as reasons

blp = Blueprint("citizen", __name__)
GUESS_LIMIT = "20/minute"


def _refuse(status: int, title: str, message: str, headers: dict | None = None) -> Response:
    html = render_template("citizen/notice.html", title=title, message=message)
    return Response(html, status=status, headers=headers or {}, mimetype="text/html")


def find(token: str) -> Invitation | Response:
    """The invitation of ``token``, or the Chinese page to answer instead (404, 429)."""
    settings = current_app.config["HCP_SETTINGS"]
    if len(token) == tokens.TOKEN_CHARS:
        invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == tokens.token_hash(token)))
        if invitation is not None:
            return invitation
    # ratelimit.hit fails open (and logs once a minute) when its store is down.
    reset_at = ratelimit.hit(ratelimit.limit(GUESS_LIMIT), 1, settings.instance, "token-guess",
                             request.remote_addr or "-")
    if reset_at is not None:
        retry = str(max(1, math.ceil(reset_at - time.time())))
        return _refuse(429, "请稍后再试", "尝试次数过多，请稍后再打开评价链接。", {"Retry-After": retry})
    return _refuse(404, "链接无效", "没有找到这个评价链接，请核对短信或回执上的链接。")


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
