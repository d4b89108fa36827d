"""hcp's Flask application: the intake and staff APIs, web pages and the ``hcp`` CLI."""
from __future__ import annotations

from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    """Build the app. ``config`` overrides HCP_* environment values (tests use it)."""
    from config import load_settings
    from service import dispatch, edge, errors, health, openapi
    from service.observability import jsonlog, metrics
    from service.auth import api as auth_api
    from service.auth import ratelimit
    from service.cases import api as cases_api
    from service.citizen import pages as citizen_pages
    from service.clients import api as clients_api
    from service.devices import api as devices_api
    from service.exchange import api as exchange_api
    from service.extensions import api, csrf, db, login, migrate
    from service.projects import api as projects_api
    from service.ratings import api as ratings_api
    from service.reasons import api as reasons_api
    from service.insights import api as insights_api
    from service.reports import api as reports_api
    from service.stats import api as stats_api
    from service.suspicious import api as suspicious_api
    from service.web import admin as web_admin
    from service.web import auth as web_auth
    from service.web import kiosk as web_kiosk
    from service.web import pages as web_pages
    from service.web import security as web_security
    from service.web import dashboard as web_dashboard
    from service.web import insights as web_insights
    from service.web import suspicious as web_suspicious

    settings = load_settings(config)
    app = Flask(__name__, template_folder="web/templates")
    app.config.update(settings.flask_config())
    if settings.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)
    jsonlog.configure()
    edge.init_app(app)

    db.init_app(app)
    _sqlite_pragmas(app, db)
    _ping_idle_connections(app, db)
    migrate.init_app(app, db, directory=_migrations_dir(), render_as_batch=True)
    ratelimit.init_app(app)
    login.init_app(app)
    csrf.init_app(app)
    openapi.init_app(app, api)  # before any route: bounded path ids
    api.init_app(app)
    for blp in (ratings_api.blp, cases_api.blp, auth_api.blp, stats_api.blp, clients_api.blp,
                reasons_api.blp, projects_api.blp, insights_api.blp, reports_api.blp, devices_api.blp,
                exchange_api.blp, suspicious_api.blp):
        api.register_blueprint(blp)
        csrf.exempt(blp)  # bearer-token APIs; forms on web pages keep CSRF
    app.register_blueprint(health.blp)
    app.register_blueprint(web_auth.blp)
    app.register_blueprint(web_pages.blp)
    app.register_blueprint(web_kiosk.blp)
    app.register_blueprint(citizen_pages.blp)
    csrf.exempt(citizen_pages.blp)  # the token in the URL is the credential; no cookie needed
    web_security.init_app(app)
    app.register_blueprint(web_dashboard.blp)
    app.register_blueprint(web_insights.blp)
    app.register_blueprint(web_suspicious.blp)
    app.register_blueprint(web_admin.blp)
    login.login_view = "web_auth.login"
    login.login_message = "请先登录"
    errors.init_app(app)  # after api.init_app: its HTTPException handler replaces flask-smorest's
    metrics.init_app(app)
    dispatch.celery_init_app(app)

    login.user_loader(web_auth.load_user)  # a live session row, not the signed cookie alone

    return app


def _migrations_dir() -> str:
    import os

    import models
    return os.path.join(os.path.dirname(models.__file__), "migrations")


def _ping_idle_connections(app: Flask, db) -> None:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        from service.pooling import ping_idle_connections

        with app.app_context():
            ping_idle_connections(db.engine)


def _sqlite_pragmas(app: Flask, db) -> None:
    """SQLite for several processes (web, worker, beat) on one file.

    WAL and a busy timeout let them share it. pysqlite's own transaction handling never
    sends BEGIN before a SELECT, so a read left pending on a pooled connection keeps an
    old snapshot that no ROLLBACK ends — a worker then keeps reading the past. SQLAlchemy
    therefore issues the BEGIN itself (its documented recipe), IMMEDIATE so that a
    transaction that reads and then writes never fails on a snapshot another writer moved.
    """
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    with app.app_context():
        @event.listens_for(db.engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # SQLAlchemy, not pysqlite, starts transactions
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(db.engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
