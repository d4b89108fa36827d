"""``/kiosk``: the hall tablet page (政务大厅平板). Public; it holds no data of its own.

The page posts each rating with the tablet's device key through the intake API
(``POST /api/v1/ratings``), like any other device; the key lives in the browser's
localStorage, set once on the page's setup screen — from a 6-character pairing code the
admin console gives (``POST /api/v1/devices/pair``), typed or scanned as
``/kiosk#pair=CODE`` — or by opening ``/kiosk#key=…``.
After a bad rating the tablet offers the reason table's hall reasons (scope offline) for
the tapped level, sent as ``reasons``; a code the server no longer takes (the table was
replaced while the page was open) is sent again as a free tag, so the rating is kept.
Everything that runs is ``static/kiosk.js``; this view only renders the screens.
"""
from __future__ import annotations

from flask import Blueprint, render_template, url_for

from models import LEVEL_LABELS
from service.extensions import db
from service.reasons import table as reasons

blp = Blueprint("kiosk", __name__)

# Seconds the thank-you screen stays before the faces come back.
RESET_SECONDS = 5


@blp.get("/kiosk")
def kiosk():
    # The hall's reasons (评价指标, scope offline) of the active table; the page offers
    # those of the tapped level, and the intake checks them again.
    _, table = reasons.active(db.session)
    return render_template("kiosk.html", levels=sorted(LEVEL_LABELS.items(), reverse=True),
                           reasons=[o for o in table if o.scope == "offline"], reset_seconds=RESET_SECONDS,
                           api_url=url_for("ratings.Ratings"), pair_url=url_for("devices.Pair"))
