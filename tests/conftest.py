"""Fixtures: real PostgreSQL (or SQLite), a real Redis and a real Celery worker process.

The backend is chosen by HCP_TEST_BACKEND: ``postgres`` (default; PostgreSQL + a Redis
server this suite starts on a free port) or ``sqlite`` (the embedded default: SQLite and
kombu's SQLAlchemy broker in files). Each run gets its own database, queue name and
rate-limit prefix, so runs never see each other's data.
"""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import delete, text
from sqlalchemy.exc import OperationalError

from tests import support

BACKEND = os.environ.get("HCP_TEST_BACKEND", "postgres")


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres_only: needs PostgreSQL (skipped on the sqlite run)")
    config.addinivalue_line("markers", "browser: drives headless Chromium")


def pytest_collection_modifyitems(config, items):
    if BACKEND == "postgres":
        return
    skip = pytest.mark.skip(reason="PostgreSQL only")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A Redis server of this test run's own, on a free port (stopped and restarted by fault tests)."""
    if BACKEND != "postgres":
        yield None
        return
    server = support.RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def platform_server():
    """The fake provincial platform (tests/fake_platform.py) HCP_EXCHANGE_URL points at."""
    from tests.fake_platform import FakePlatform

    server = FakePlatform(token="platform-token")
    yield server
    server.stop()


@pytest.fixture
def platform(platform_server):
    """The fake platform, with nothing recorded and no failure ordered."""
    platform_server.reset()
    yield platform_server
    platform_server.reset()


@pytest.fixture(scope="session")
def hcp_env(tmp_path_factory, redis_server, platform_server):
    """The HCP_* environment shared by the in-process app and the worker processes."""
    var = tmp_path_factory.mktemp("var")
    run = uuid.uuid4().hex[:8]
    env = {
        "HCP_VAR_DIR": str(var),
        "HCP_SECRET_KEY": "test-secret-" + run,
        "HCP_DATA_KEY": support.TEST_DATA_KEY,
        "HCP_INSTANCE": f"hcp-test-{run}",
        "HCP_DEVICE_RATE_LIMIT": "100000/minute",
        "HCP_SWEEP_SECONDS": "1",
        "HCP_SWEEP_GRACE_SECONDS": "5",
        # Tests plant uncounted and unchecked ratings on purpose; the catch-up runs where a
        # test asks for it (test_catch_up.py).
        "HCP_CATCH_UP_SECONDS": "86400",
        # Tests run the warning sweep themselves, on dates they choose (test_warnings.py).
        "HCP_WARNING_SECONDS": "86400",
        # 上报 goes to the fake platform; tests push themselves (or send the task to the worker).
        "HCP_EXCHANGE_URL": platform_server.url,
        "HCP_EXCHANGE_TOKEN": "platform-token",
        "HCP_AREA_CODE": "330106",
        "HCP_EXCHANGE_SWEEP_SECONDS": "86400",
    }
    dbname = None
    if BACKEND == "postgres":
        dbname = f"hcp_test_{run}"
        support.create_pg_database(dbname)
        env["HCP_DATABASE_URL"] = f"{support.PG_URL}/{dbname}"
        env["HCP_BROKER_URL"] = redis_server.url(0)
        env["HCP_REDIS_URL"] = redis_server.url(1)
    else:
        env["HCP_DATABASE_URL"] = f"sqlite:///{var / 'hcp.sqlite'}"
        env["HCP_BROKER_URL"] = f"sqla+sqlite:///{var / 'broker.sqlite'}"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if dbname:
        support.drop_pg_database(dbname)


@pytest.fixture(scope="session")
def app(hcp_env):
    """The Flask app, migrated to head with Alembic (the same path as ``hcp db upgrade``)."""
    from flask_migrate import upgrade

    from service import create_app

    application = create_app()
    application.config["TESTING"] = True
    application.config["WTF_CSRF_ENABLED"] = True
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        from service.extensions import db
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Every test starts with empty tables (only when the test uses the app)."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    yield
    from service.auth import ratelimit
    from service.extensions import db

    with application.app_context():
        # One statement, so a worker still routing an earlier rating cannot slip a row in
        # between two deletes; SQLite's single writer makes the DELETEs atomic there.
        # A worker transaction may hold locks TRUNCATE needs in another order: PostgreSQL
        # then aborts one of the two as a deadlock, and the cleanup tries again.
        for attempt in range(10):
            try:
                if db.engine.dialect.name == "postgresql":
                    names = ", ".join(t.name for t in db.metadata.sorted_tables)
                    db.session.execute(text(f"TRUNCATE {names} CASCADE"))
                else:
                    for table in reversed(db.metadata.sorted_tables):
                        db.session.execute(delete(table))
                db.session.commit()
                break
            except OperationalError:
                db.session.rollback()
                if attempt == 9:
                    raise
        try:
            ratelimit.reset()
        except Exception:  # noqa: BLE001 — a test may have stopped Redis on purpose
            pass


@pytest.fixture
def query(app):
    """Run ``fn(session)`` in a fresh app context and return its result (for assertions)."""
    from service.extensions import db

    def run(fn):
        with app.app_context():
            return fn(db.session)
    return run


@pytest.fixture
def shell(app):
    """``hcp`` in this process against the test app (tests.support.Shell)."""
    return support.Shell(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def worker(app, hcp_env):
    """A real ``celery -A workers worker`` process (with beat embedded) for the whole run."""
    # Tests before this one may have queued routing tasks for ratings long deleted; the
    # worker starts on an empty queue so it does not spend the first test working them off.
    app.extensions["celery"].control.purge()
    proc = support.CeleryWorker(hcp_env, beat=True)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def org(app):
    """Builders for departments, items, devices and users, named by the test."""
    return support.Org(app)


@pytest.fixture(scope="session")
def live_server(app, hcp_env):
    """hcp under gunicorn for the browser tests (tests/test_web_*.py)."""
    from tests.web_support import LiveServer

    server = LiveServer(hcp_env, support.free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright, one for the whole run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=os.environ.get("HCP_TEST_CHROMIUM", "/usr/bin/chromium"),
                                      headless=True,
                                      args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def clock():
    """The application's clock (models.types.clock), set by the test and reset after it.

    In-process only: the app under the test client and the domain functions read it; a
    worker process keeps the real time.
    """
    from models.types import clock as app_clock

    yield app_clock
    app_clock.set(None)
