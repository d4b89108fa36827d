"""One JSON object per log line, with the request id of the work it belongs to.

In the web process the id is the request's ``g.request_id`` (the X-Request-ID header or
a fresh one, see service/errors.py); in a Celery worker it is the id the intake sent in
the task headers, bound for the duration of the task. So ``grep`` for one id finds a
rating's intake and its routing, on whichever machines they ran.
"""
from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone

from config.settings import process_settings

# The request id outside a Flask request (a Celery task, a CLI command).
request_id_var: ContextVar[str | None] = ContextVar("hcp_request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def current_request_id() -> str | None:
    """The id of the request or task being served, if any."""
    try:
        from flask import g, has_request_context
        if has_request_context():
            return g.get("request_id")
    except ImportError:  # pragma: no cover — flask is a dependency
        pass
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record passing the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", "pid", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "pid": record.process,
        }
        # Fields passed with ``extra=`` (and Celery's task name/id) go in as they are.
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _HcpHandler(logging.StreamHandler):
    """Marks the handler hcp installed, so configuring twice installs it once."""


def configure(fmt: str | None = None, level: str | None = None) -> None:
    """Log to stderr as JSON lines (``HCP_LOG_FORMAT=text`` for a human-readable form)."""
    settings = process_settings()
    fmt = (fmt or settings.log_format).lower()
    root = logging.getLogger()
    root.setLevel(level or settings.log_level)
    if any(isinstance(h, _HcpHandler) for h in root.handlers):
        return
    handler = _HcpHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "text":
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
