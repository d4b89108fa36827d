"""Security headers for the HTML pages: a Content-Security-Policy without inline scripts.

Every script and style hcp serves is a file under ``service/static/``; pages pass data to
scripts in ``data-`` attributes, so the policy can forbid inline code outright.
"""
from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFError

from service.web.errors import error_page

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")

# The API docs page (Swagger UI) ships its own inline bootstrap script.
EXEMPT_PREFIXES = ("/api/",)


def init_app(app: Flask) -> None:
    @app.after_request
    def _page_headers(response):
        if response.mimetype == "text/html" and not request.path.startswith(EXEMPT_PREFIXES):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
            # Staff pages hold case and rater data: no copies in shared browser caches.
            response.headers.setdefault("Cache-Control", "private, no-cache")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(err):
        return error_page(400, "页面已过期或缺少安全令牌，请刷新页面后重试。")
