"""A whole hcp deployment in processes the test owns: gunicorn, Celery workers, beat,
and (when a test must stop it) a PostgreSQL server of its own.

The fault and data-protection tests drive hcp the way production does — over HTTP with
real concurrency — and stop, start or SIGKILL these processes themselves. Nothing here
touches the system PostgreSQL or Redis except to create and drop a scratch database.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tests import support


class PostgresServer:
    """A PostgreSQL cluster of the test's own (initdb into a temp dir), on a free port.

    initdb refuses to run as root, so the cluster belongs to the ``postgres`` account
    when the tests run as root; its directory is made directly under the system temp dir
    because pytest's own temp dirs are private to the user running the tests.
    """

    def __init__(self):
        self.workdir = Path(tempfile.mkdtemp(prefix="hcp-test-pg-"))
        self.datadir = self.workdir / "pgdata"
        self.port = support.free_port()
        self.bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent
        self.log = self.workdir / "postgres.log"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
            self.workdir.chmod(0o700)
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.workdir}'\nfsync = off\n"
                       "max_connections = 100\nshared_buffers = 64MB\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "60", "start")
        support.wait_for(self.ready, timeout=30, message="test PostgreSQL to accept connections")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def ready(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


class Web(support.Gunicorn):
    """hcp's web process, with its access log (the data-protection test reads every line)."""

    def __init__(self, env: dict, workers: int = 2, threads: int = 8):
        super().__init__({**env, "HCP_ACCESS_LOG": "-"}, workers=workers, threads=threads)


def side_app(env: dict):
    """``create_app`` for a second deployment inside the test process.

    ``create_app`` makes its Celery app Celery's default (and current) app; those are
    given back, so the suite's own tasks keep going to its broker.
    """
    from celery import _state

    from service import create_app

    saved_celery = _state.default_app
    saved_current = getattr(_state._tls, "current_app", None)  # Celery() also makes itself current
    app = create_app(env)
    if saved_celery is not None:
        saved_celery.set_default()
    if saved_current is not None:
        saved_current.set_current()
    return app


def children(pid: int) -> list[int]:
    """Direct child pids of ``pid`` (Linux /proc)."""
    out = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            out += [int(p) for p in Path(task).read_text().split()]
        except OSError:
            pass
    return out


def sigkill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants at once, as a machine dying would."""
    stack, tree = [pid], []
    while stack:
        p = stack.pop()
        tree.append(p)
        stack += children(p)
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Stack:
    """One hcp deployment: its env, a migrated database, web, workers and beat.

    ``database_url`` defaults to a scratch database on the system PostgreSQL; ``redis``
    is a support.RedisServer the test owns (broker on db 0, rate limits on db 1).
    """

    def __init__(self, workdir: Path, redis: support.RedisServer, database_url: str | None = None,
                 extra_env: dict | None = None):
        run = uuid.uuid4().hex[:8]
        self.workdir = workdir
        self.dbname = None
        if database_url is None:
            self.dbname = f"hcp_fault_{run}"
            support.create_pg_database(self.dbname)
            database_url = f"{support.PG_URL}/{self.dbname}"
        self.env = {
            "HCP_VAR_DIR": str(workdir),
            "HCP_SECRET_KEY": "fault-secret-" + run,
            "HCP_DATA_KEY": support.TEST_DATA_KEY,
            "HCP_INSTANCE": f"hcp-fault-{run}",
            "HCP_DEVICE_RATE_LIMIT": "1000000/minute",
            "HCP_DATABASE_URL": database_url,
            "HCP_BROKER_URL": redis.url(0),
            "HCP_REDIS_URL": redis.url(1),
            "HCP_SWEEP_SECONDS": "2",
            "HCP_SWEEP_GRACE_SECONDS": "3",
            **(extra_env or {}),
        }
        self.web: Web | None = None
        self.workers: dict[str, support.CeleryWorker] = {}
        self.beat: support.Beat | None = None
        self.app = None

    def migrate(self):
        """Migrate to head in this process and keep the app for builders and queries."""
        from flask_migrate import upgrade

        self.app = side_app(self.env)
        with self.app.app_context():
            upgrade()
        return self.app

    def hall(self, handlers: int = 1):
        """Migrate, then one hall (政务服务大厅) with its handlers and one kiosk.

        Returns (app, the kiosk's key, the handlers); a lone handler is named ``handler``,
        several ``handler0``, ``handler1`` …
        """
        app = self.migrate()
        org = support.Org(app)
        hall = org.department("hall", "政务服务大厅")
        names = ["handler"] if handlers == 1 else [f"handler{n}" for n in range(handlers)]
        users = [org.user(name, "handler", hall) for name in names]
        _, key = org.device(hall, name="kiosk-1")
        return app, key, users

    def start_web(self, **kwargs) -> Web:
        self.web = Web(self.env, **kwargs)
        self.web.start()
        return self.web

    def start_worker(self, name: str, concurrency: int = 1) -> support.CeleryWorker:
        worker = support.CeleryWorker(self.env, beat=False, concurrency=concurrency, name=name)
        worker.start()
        self.workers[name] = worker
        return worker

    def start_beat(self) -> support.Beat:
        self.beat = support.Beat(self.env)
        self.beat.start()
        return self.beat

    def logs(self) -> str:
        """Everything the web, worker and beat processes wrote."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        for proc in [self.web, self.beat, *self.workers.values()]:
            if proc is not None:
                try:
                    proc.stop()
                except Exception:  # noqa: BLE001 — stop everything else regardless
                    pass
        if self.app is not None:
            from service.extensions import db
            with self.app.app_context():
                db.engine.dispose()
        if self.dbname:
            support.drop_pg_database(self.dbname)


def wait_quiet(seconds: float) -> None:
    """Let time pass on purpose (an outage's length), not to synchronise anything."""
    time.sleep(seconds)
