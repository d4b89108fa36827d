"""What every request passes before a view sees it (SPEC §11): bounded bodies, JSON that
parses safely, and text without characters the database or a spreadsheet cannot hold.

* ``Text`` — the marshmallow field for every text input of the API. It refuses NUL, the
  other C0 control characters except tab, LF and CR, and lone surrogates (``"\\ud800"``
  in JSON), naming the field: PostgreSQL refuses NUL in text, and a surrogate cannot be
  encoded, so either was a 500.
* ``Blueprint`` — flask-smorest's, with a JSON parser that answers 422 for a body nested
  too deep to parse and reads a number too long for any column as an invalid value of its
  field (so a batch item carrying one is ``invalid``, the others stored).
* ``init_app`` — 413 for a body over ``HCP_MAX_BODY_BYTES`` on every route before anything
  reads it; 422 (API) or 400 (pages) for a query argument or form field with such
  characters; JSON answers that stay valid UTF-8 whatever text they echo; the cookie
  session read only from a request that sends one (``CookieSessions``).
"""
from __future__ import annotations

import json
import math
import re

import flask_smorest
from flask import Flask, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from flask_smorest import abort
from marshmallow import fields
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

# NUL and the other C0 controls but tab, LF and CR (what XML, hence xlsx, cannot hold either),
# and UTF-16 surrogates, which only a JSON escape can produce and no UTF-8 can carry.
_BAD_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON number longer than this is no value any field holds (a bigint has 19 digits).
MAX_NUMBER_CHARS = 32


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be taken as text, or None if it can."""
    found = _BAD_CHARACTER.search(value)
    if found is None:
        return None
    return f"must not contain the character U+{ord(found.group()):04X}"


class Text(fields.String):
    """A string field that refuses control characters and lone surrogates (see module doc)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = text_problem(text)
        if problem:
            raise self.make_error("invalid_text", problem=problem)
        return text

    default_error_messages = {"invalid_text": "{problem}"}


class Unreadable:
    """A JSON number too long (or NaN/Infinity): no field accepts it, so it fails as its field."""

    def __init__(self, text: str):
        self.text = text[:16] + "…"

    def __repr__(self):
        return f"Unreadable({self.text})"


def _int(text: str):
    return Unreadable(text) if len(text) > MAX_NUMBER_CHARS else int(text)


def _float(text: str):
    value = float(text)
    return value if len(text) <= MAX_NUMBER_CHARS and math.isfinite(value) else Unreadable(text)


def loads(data: str):
    """``json.loads`` with every number checked; RecursionError for nesting too deep."""
    return json.loads(data, parse_int=_int, parse_float=_float, parse_constant=Unreadable)


class JsonParser(FlaskParser):
    """webargs' Flask parser with ``loads`` for JSON bodies."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        try:
            return loads(data.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise json.JSONDecodeError(f"Bytes decoding error : {err.reason}", doc="", pos=err.start) from err
        except RecursionError:
            abort(422, errors={"json": {"_schema": ["the JSON is nested too deeply"]}},
                  message="the JSON is nested too deeply")


class Blueprint(flask_smorest.Blueprint):
    """Every API blueprint: flask-smorest's, parsing bodies with ``JsonParser``."""

    ARGUMENTS_PARSER = JsonParser()


class JsonProvider(DefaultJSONProvider):
    """Chinese as it is in answers; a lone surrogate an answer echoes (an unknown field's
    name, a rejected client_id) becomes U+FFFD, so the answer stays UTF-8 and valid JSON."""

    ensure_ascii = False

    def dumps(self, obj, **kwargs):
        text = super().dumps(obj, **kwargs)
        if not text.isascii():
            text = _SURROGATE.sub("\ufffd", text)
        return text


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie session, costing nothing on a request without the cookie.

    The APIs authenticate with bearer keys and send no cookie; Flask would still build its
    signing serializer to open an empty session and read seven cookie settings to save it
    (about 3 % of a PUT /projects' web CPU). A request with the cookie, or a session a view
    filled, goes Flask's own way unchanged.
    """

    def open_session(self, app, request):
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if not session and not session.modified:  # what Flask does for it: at most "Vary: Cookie"
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)


# Only these bodies fill ``request.form``; for any other, reading it builds empty dicts.
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def init_app(app: Flask) -> None:
    """Register the body limit and the query/form check; call before any other before_request."""
    app.json = JsonProvider(app)
    app.session_interface = CookieSessions()
    app.before_request(_refuse_large_body)
    app.before_request(_refuse_bad_arguments)


def _refuse_large_body():
    """413 for a body over MAX_CONTENT_LENGTH (HCP_MAX_BODY_BYTES), before any view or parser."""
    limit = request.max_content_length
    if limit is None:
        return
    if request.content_length is not None:
        too_large = request.content_length > limit
    elif "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # No length declared: werkzeug reads at most ``limit`` bytes and stops there, so a
        # body that fills the limit was cut off (it is kept, cached, for the view otherwise).
        too_large = len(request.get_data(cache=True)) >= limit
    else:
        too_large = False
    if too_large:
        abort(413, message=f"the body is larger than {limit} bytes (HCP_MAX_BODY_BYTES)")


def _refuse_bad_arguments():
    """No query argument or form field may hold what ``Text`` refuses, on any route."""
    checked = []
    if request.query_string:
        checked.append(("query", request.args))
    if request.mimetype in _FORM_TYPES:
        checked.append(("form", request.form))
    for location, values in checked:
        for name, value in values.items(multi=True):
            problem = text_problem(name) or text_problem(value)
            if problem is None:
                continue
            shown = name if text_problem(name) is None else repr(name)
            if request.path.startswith("/api/"):
                abort(422, errors={location: {shown: [problem]}}, message=f"{shown}: {problem}")
            return render_template("error.html", code=400, message=f"输入含有不允许的字符（{shown}）"), 400
    return None
