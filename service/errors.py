"""JSON errors for the API, Chinese error pages elsewhere; 503 with Retry-After when the
database is unreachable."""
from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, jsonify, make_response, request
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from service.web.errors import error_page

log = logging.getLogger(__name__)
RETRY_AFTER_DB = "5"
# A client's X-Request-ID is kept (logged, stored with its ratings, echoed) only if it is
# short and plain; anything else — 5,000 characters, spaces, quotes — gets a fresh id.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id(sent: str | None) -> str:
    """The client's request id if it is at most 64 safe characters, else a new one."""
    if sent and SAFE_REQUEST_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def init_app(app: Flask) -> None:
    @app.before_request
    def _request_id():
        g.request_id = request_id(request.headers.get("X-Request-ID"))

    @app.after_request
    def _headers(response):
        # A request refused at the edge (service/edge.py) never reached _request_id.
        response.headers["X-Request-ID"] = g.get("request_id") or request_id(request.headers.get("X-Request-ID"))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype in ("text/html", "text/plain", "text/csv", "application/json"):
            response.charset = "utf-8"
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def _database_down(err):
        from service.extensions import db

        log.error("database unavailable: %s", err)
        db.session.rollback()
        return _retry_later("database unavailable, retry later")

    @app.errorhandler(IntegrityError)
    def _changed_meanwhile(err):
        # A row this request relied on went away between its checks and its write (say a
        # device deleted while its rating waited for a shared INSERT). Retrying is safe:
        # the retry is checked afresh and gets its definite answer.
        from service.extensions import db

        log.warning("a row changed meanwhile: %s", err)
        db.session.rollback()
        return _retry_later("data changed meanwhile, retry later")

    @app.errorhandler(DBAPIError)
    def _database_error(err):
        if err.connection_invalidated:
            return _database_down(err)
        raise err

    @app.errorhandler(HTTPException)
    def _http_error(err):
        # JSON (flask-smorest's shape, with 422 field errors) under /api; pages get a
        # Chinese page. An unhandled exception arrives here as InternalServerError.
        from service.extensions import api

        if _is_api():
            payload, status, headers = api.handle_http_exception(err)
            reason = (getattr(err, "data", None) or {}).get("reason")
            if reason:  # a workflow refusal's typed reason (service.cases.workflow.REASONS)
                payload["reason"] = reason
            return payload, status, headers
        resp = make_response(error_page(err.code or 500))
        for name, value in err.get_headers():  # Allow (405), Retry-After (429, 503)
            if name.lower() != "content-type":
                resp.headers[name] = value
        return resp


def _retry_later(message: str):
    """503 with Retry-After: JSON naming ``message`` under /api, the Chinese page elsewhere."""
    if _is_api():
        resp = jsonify(code=503, status="Service Unavailable", message=message)
        resp.status_code = 503
    else:
        resp = make_response(error_page(503))
    resp.headers["Retry-After"] = RETRY_AFTER_DB
    return resp


def _is_api() -> bool:
    return request.path.startswith("/api/")
