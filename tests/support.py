"""Helpers for tests: service processes, data builders and polling with a deadline."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import requests

PG_URL = os.environ.get("HCP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
# A fixed Fernet key for the test run (tests scan the database for clear text).
TEST_DATA_KEY = "kY3v5Zx0m1Ez6mVSb1cY2yq1rJH1kQ8cL2Zq0fG9x5A="
ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition, timeout: float = 60.0, interval: float = 0.05, message: str = "condition"):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds.

    The default is generous: a worker on a loaded two-core machine (CI beside other runs) has
    taken over 20 s to route one rating. A deadline only bounds how long a broken test takes.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def opt_in_directory(config, items, here: Path, marker: str, make_target: str) -> None:
    """Mark the tests under ``here`` with ``marker`` (PostgreSQL only); skip them unless ``-m`` chose it.

    The fault and fuzz suites take minutes each, so ``make test`` leaves them out and
    their own make targets select them.
    """
    import pytest

    expr = config.option.markexpr or ""
    selected = marker in expr and f"not {marker}" not in expr
    for item in items:
        if Path(str(item.fspath)).resolve().parent != here:
            continue
        item.add_marker(getattr(pytest.mark, marker))
        item.add_marker(pytest.mark.postgres_only)
        if not selected:
            item.add_marker(pytest.mark.skip(reason=f"{marker} test: run with `make {make_target}` (-m {marker})"))


def concurrently(n: int, fn) -> list:
    """Run ``fn()`` in ``n`` threads at once; their results, in the order they finished."""
    results, lock = [], threading.Lock()

    def run():
        value = fn()
        with lock:
            results.append(value)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_pg_database(name: str) -> None:
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_pg_database(name: str) -> None:
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RedisServer:
    """A redis-server process owned by the tests, so they can stop and restart it."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.proc = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, timeout=10, message="redis-server to answer")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class Service:
    """A process a test runs (gunicorn, a Celery worker, beat) with its output in a log
    file; ``stop()`` asks it to end and kills it if it will not."""

    stop_timeout = 20.0

    def __init__(self, env: dict, log: Path):
        self.env = {**os.environ, **env}
        self.log = log
        self.proc: subprocess.Popen | None = None
        self._out = None

    def spawn(self, cmd: list[str]) -> None:
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT)

    def check_running(self, what: str) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{what} exited:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._out is not None:
            self._out.close()
            self._out = None


class CeleryWorker(Service):
    """A real Celery worker process (``celery -A workers worker``), optionally with beat."""

    def __init__(self, env: dict, beat: bool = False, concurrency: int = 1, name: str = "w1"):
        super().__init__(env, Path(env["HCP_VAR_DIR"]) / f"worker-{name}.log")
        self.beat = beat
        self.concurrency = concurrency
        self.name = name

    def start(self) -> None:
        cmd = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--loglevel=INFO",
               f"--concurrency={self.concurrency}", "-Q", self.env["HCP_INSTANCE"],
               "-n", f"{self.name}@%h", "--without-gossip", "--without-mingle"]
        if self.beat:
            cmd += ["-B", "-s", str(Path(self.env["HCP_VAR_DIR"]) / f"beat-{self.name}")]
        self.spawn(cmd)
        wait_for(lambda: b"ready." in self.log.read_bytes() or self.proc.poll() is not None,
                 timeout=60, message="celery worker to be ready")
        self.check_running("celery worker")


class Beat(Service):
    """``celery -A workers beat``: sends the sweep that resends unrouted bad ratings."""

    def __init__(self, env: dict):
        super().__init__(env, Path(env["HCP_VAR_DIR"]) / "beat.log")

    def start(self) -> None:
        self.spawn([sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel=INFO",
                    "-s", str(Path(self.env["HCP_VAR_DIR"]) / "beat-schedule")])


class Gunicorn(Service):
    """hcp's web process: gunicorn with hcp's own config (config/gunicorn.py) on a port of its own."""

    stop_timeout = 30.0

    def __init__(self, env: dict, port: int | None = None, workers: int = 2, threads: int = 8,
                 log_name: str = "web.log"):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__({**env, "HCP_BIND": f"127.0.0.1:{self.port}", "HCP_WEB_WORKERS": str(workers),
                          "HCP_WEB_THREADS": str(threads)}, Path(env["HCP_VAR_DIR"]) / log_name)

    def start(self) -> None:
        self.spawn([sys.executable, "-m", "gunicorn", "-c", "python:config.gunicorn", "service:create_app()"])
        wait_for(lambda: self.proc.poll() is not None or self.ready(), timeout=60,
                 message="gunicorn to answer /healthz")
        self.check_running("gunicorn")

    def ready(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False


HCP = shutil.which("hcp", path=str(Path(sys.executable).parent)) or "hcp"


def hcp(*args: str, stdin: str | None = None, check: bool = True,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """Run this venv's ``hcp`` console script as a user would (``env`` defaults to the test's)."""
    proc = subprocess.run([HCP, *args], input=stdin, capture_output=True, text=True,
                          env=os.environ if env is None else env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"hcp {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


class Shell:
    """``hcp`` run in this process against the test app, answering like ``hcp()``.

    The console script's own start (imports, app factory, settings from the environment)
    is proven by the tests that call ``hcp()``; a test about what a command does takes this
    one, which costs milliseconds instead of a process start. A Python exception other
    than the command's own exit fails the test at once, as a traceback would show.
    """

    def __init__(self, app):
        self.runner = app.test_cli_runner()

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        from service.cli import main

        result = self.runner.invoke(main, list(args), input=stdin)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        proc = subprocess.CompletedProcess(["hcp", *args], result.exit_code, result.stdout, result.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"hcp {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc


class RobotServer:
    """A group-robot webhook on 127.0.0.1, started at once: records each JSON post by its
    full path (query included, as robot keys and signatures travel there); can fail first."""

    def __init__(self):
        self.posts: list[tuple[str, dict]] = []
        self.refused: list[str] = []
        self.fail: dict[str, int] = {}
        self.lock = threading.Lock()
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                path = self.path.split("?", 1)[0]
                with robot.lock:
                    failing = robot.fail.get(path, 0) > 0
                    if failing:
                        robot.fail[path] -= 1
                        robot.refused.append(path)
                    else:
                        robot.posts.append((self.path, json.loads(body.decode("utf-8"))))
                answer = b'{"errcode": 0, "errmsg": "ok"}'
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, name: str) -> str:
        # The key in the query is how WeCom/DingTalk robot URLs look; it must not matter here.
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/{name}?key=secret-{name}"

    def texts(self, name: str) -> list[str]:
        with self.lock:
            return [body["text"]["content"] for path, body in self.posts
                    if path.split("?", 1)[0] == f"/hook/{name}"]


class Org:
    """Builds departments, items, devices and users for a test, each committed in its own
    app context, and returns them detached with their columns loaded.

    No app context stays pushed: a test-client request must not share a session (and
    its cached rows) with the test's setup.
    """

    def __init__(self, app):
        self.app = app

    def _build(self, make):
        from service.extensions import db

        with self.app.app_context():
            result = make()
            db.session.commit()
            for obj in result if isinstance(result, tuple) else (result,):
                if isinstance(obj, db.Model):
                    db.session.refresh(obj)
            return result

    def department(self, code: str, name: str | None = None, parent=None):
        from service.org import add_department
        from service.extensions import db

        return self._build(lambda: add_department(code, name or code, db.session.merge(parent) if parent else None))

    def item(self, code: str, department):
        from service.extensions import db
        from service.org import add_item

        return self._build(lambda: add_item(code, code, db.session.merge(department)))

    def device(self, department, channel: str = "hall_terminal", window: str | None = "1",
               rate_limit: str | None = None, name: str = "kiosk"):
        """Returns (device, key)."""
        from service.org import add_device
        from service.extensions import db

        return self._build(lambda: add_device(name, db.session.merge(department), channel, window, rate_limit))

    def user(self, username: str, role: str, department, password: str = "correct-horse-9"):
        from service.org import add_user
        from service.extensions import db

        return self._build(lambda: add_user(username, password, role, db.session.merge(department)))

    def token(self, user) -> str:
        from models import User
        from service.auth.access import issue_token
        from service.extensions import db

        return self._build(lambda: issue_token(db.session.get(User, user.id)))[0]


def rating_body(level: int = 1, **extra) -> dict:
    """A valid rating body with a fresh client_id."""
    import uuid

    body = {"client_id": str(uuid.uuid4()), "level": level, "rated_at": "2026-11-20T09:30:00+08:00"}
    body.update(extra)
    return body


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def http_session() -> requests.Session:
    return requests.Session()
