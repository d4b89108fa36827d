"""``/kiosk``: the hall tablet page (政务大厅平板). Public; it holds no data of its own.

The page posts each rating with the tablet's device key through the intake API
(``POST /api/v1/ratings``), like any other device; the key lives in the browser's
localStorage, set once on the page's setup screen — from a 6-character pairing code the
admin console gives (``POST /api/v1/devices/pair``), typed or scanned as
``/kiosk#pair=CODE`` — or by opening ``/kiosk#key=…``.
Everything that runs is ``static/kiosk.js``; this view only renders the screens.
"""
from __future__ import annotations

from flask import Blueprint, render_template, url_for

from models import LEVEL_LABELS
from service.web.labels import TAG_LABELS

blp = Blueprint("kiosk", __name__)

# Seconds the thank-you screen stays before the faces come back.
RESET_SECONDS = 5


@blp.get("/kiosk")
def kiosk():
    return render_template("kiosk.html", levels=sorted(LEVEL_LABELS.items(), reverse=True),
                           tags=TAG_LABELS, reset_seconds=RESET_SECONDS,
                           api_url=url_for("ratings.Ratings"), pair_url=url_for("devices.Pair"))
