"""hcp's Flask application: the intake and staff APIs, web pages and the ``hcp`` CLI."""
from __future__ import annotations

import logging

from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    """Build the app. ``config`` overrides HCP_* environment values (tests use it)."""
    from config import load_settings
    from service import errors, health, openapi
    from service.auth import api as auth_api
    from service.cases import api as cases_api
    from service.extensions import api, csrf, db, limiter, login, migrate
    from service.ratings import api as ratings_api
    from service.web import auth as web_auth
    from service.web import kiosk as web_kiosk
    from service.web import pages as web_pages
    from service.web import security as web_security
    from workers.app import celery_init_app

    settings = load_settings(config)
    app = Flask(__name__, template_folder="web/templates")
    app.config.update(settings.flask_config())
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 1, "socket_timeout": 1}
    app.json.ensure_ascii = False
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    db.init_app(app)
    _sqlite_pragmas(app, db)
    migrate.init_app(app, db, directory=_migrations_dir(), render_as_batch=True)
    limiter.init_app(app)
    login.init_app(app)
    csrf.init_app(app)
    openapi.init_app(app, api)  # before any route: bounded path ids
    api.init_app(app)
    for blp in (ratings_api.blp, cases_api.blp, auth_api.blp):
        api.register_blueprint(blp)
        csrf.exempt(blp)  # bearer-token APIs; forms on web pages keep CSRF
    app.register_blueprint(health.blp)
    app.register_blueprint(web_auth.blp)
    app.register_blueprint(web_pages.blp)
    app.register_blueprint(web_kiosk.blp)
    web_security.init_app(app)
    login.login_view = "web_auth.login"
    login.login_message = "请先登录"
    errors.init_app(app)
    celery_init_app(app)

    from models import User

    @login.user_loader
    def load_user(user_id: str):
        return db.session.get(User, int(user_id))

    return app


def _migrations_dir() -> str:
    import os

    import models
    return os.path.join(os.path.dirname(models.__file__), "migrations")


def _sqlite_pragmas(app: Flask, db) -> None:
    """WAL and a busy timeout let the web and worker processes share one SQLite file."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    with app.app_context():
        @event.listens_for(db.engine, "connect")
        def _on_connect(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
