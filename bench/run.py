"""``make bench``: start everything, measure hcp against the thinnest intake, print ratios.

What it starts (all of it its own, all stopped at the end): a scratch database on the
PostgreSQL server at BENCH_PG_URL (dropped at the end), a redis-server on a free port,
gunicorn serving hcp and gunicorn serving the baseline (bench/baseline.py) — both with
config/gunicorn.py — and two Celery workers. Load comes from wrk (Debian's /usr/bin/wrk)
on 127.0.0.1, and for batches from a small threaded client.

Rows of the table (each ratio from numbers measured in this run):

- intake: single-rating POSTs, unique client_ids, 3 % bad, auth + validation +
  idempotency + rate limit + routing on, against bench/baseline.py. Target ≥ 1.0×.
  Beside it, the ceiling: bench/baseline.py's ``/floor``, a Flask view that parses the
  body and answers without the database, as a ratio to the baseline.
- batch: 500 ratings per request against psycopg ``executemany`` of the same rows in one
  transaction per 500, at the same concurrency. Target ≥ 0.5×.
- routing: a bad rating's receipt → its case created (assigned), p50/p95, over the bad
  ratings of the intake run, while that load ran. Target p95 < 1 s.
- figures: a hook. If ``bench/figures.py`` exists, its ``run(ctx)`` is called with the
  running context (``ctx.env``, ``ctx.dsn``, ``ctx.hcp_url``, ``ctx.staff_token()``) and
  returns rows like the others; otherwise the row says "not yet".
- hot spots: ``bench/hotspots.py`` — a year's ``GET /api/v1/insights/hotspots`` answered
  from the daily term counts, p50/p95, against recounting the same terms from the raw rows
  in the same run (``BENCH_HOTSPOTS_RATINGS``, default 1 M). Target p95 < 500 ms.
- 上报: ``bench/exchange.py`` — the push draining a backlog of outbox records to a local
  receiver against a bare loop POSTing the same batches (target ≥ 0.5×), and the single
  intake with the outbox on vs off (target: costs ≤ 10 %), same run
  (``BENCH_EXCHANGE_BACKLOG``, default 20,000).
- term counting + suspicious rules: the single intake with both on (each web process sends
  the ratings it stored as one ``process_stored`` task per 0.2 s: their terms if they have
  text, and the rules; ``--comment-share`` of
  the good ratings carry a comment, 0.33 by default) against a second hcp gunicorn on the
  same database with ``HCP_SUSPICIOUS_RULES=off`` and ``HCP_TERM_COUNTING=off``, the same
  bodies, ``--suspicious-rounds`` rounds alternating (best kept). Target ≥ 0.9×.
- 一事一评 (bench/applications.py): ``PUT /api/v1/projects`` (new done applications, each
  an invitation and its SMS) against the baseline's bare INSERT, target ≥ 0.5×; and the
  default-rating task over ``BENCH_DEFAULT_INVITATIONS`` (default 200,000) due invitations
  against one bare ``INSERT … SELECT`` of the same rows, same run, target ≤ 2× its time.
- memory: peak RSS (VmHWM) of a gunicorn web worker and of a Celery worker process.
  Targets < 150 MB / < 200 MB.

``--profile DIR`` also samples the hcp web workers with py-spy during one intake round
and writes the folded stacks and a summary of the hottest functions there.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
PYTHON = sys.executable
BIN = Path(sys.executable).parent
REQUEST_FRAMES = ("wsgi", "handle_request")  # a profiled web worker's thread serving a request
TASK_FRAMES = ("celery/app/trace.py",)  # a profiled Celery worker running a task


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@dataclass
class Row:
    name: str
    hcp: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    raw: dict = field(default_factory=dict)


class Processes:
    """Every process the bench starts, stopped (by pid) in reverse order at the end."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        return (self.logdir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        # Last started, first stopped, each waited for: web servers drain while Redis is still up.
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def _comm(proc_dir: Path) -> str:
    try:
        return (proc_dir / "comm").read_text().strip()
    except OSError:
        return ""


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Bench:
    def __init__(self, args):
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix=f"hcp-bench-{self.run_id}-"))
        self.procs = Processes(self.tmp)
        self.dbname = f"hcp_bench_{self.run_id}"
        self.dsn = f"{PG_URL}/{self.dbname}"
        self.rows: list[Row] = []
        self.rated_at = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0).isoformat()
        self.single_nonces: list[str] = []

    # ---- setup -------------------------------------------------------------------
    def setup(self) -> None:
        from cryptography.fernet import Fernet

        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        self.redis_port = free_port()
        self.redis = self.procs.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                                "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
                                      dict(os.environ))
        wait_for(lambda: self._redis_ping(), 10, "redis-server")
        self.env = {
            **os.environ,
            "HCP_DATABASE_URL": self.dsn,
            "HCP_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "HCP_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/1",
            "HCP_SECRET_KEY": secrets.token_urlsafe(32),
            "HCP_DATA_KEY": Fernet.generate_key().decode(),
            "HCP_INSTANCE": f"hcp-bench-{self.run_id}",
            "HCP_VAR_DIR": str(self.tmp / "var"),
            "HCP_SWEEP_GRACE_SECONDS": "300",  # the bench measures first sends, not the sweep
            "HCP_ACCESS_LOG": "",
            "HCP_LOG_LEVEL": "WARNING",
            "HCP_WEB_MAX_REQUESTS": "0",  # a recycled worker would take its CPU time with it
        }
        if self.args.workers:
            self.env["HCP_WEB_WORKERS"] = str(self.args.workers)
        if self.args.threads:
            self.env["HCP_WEB_THREADS"] = str(self.args.threads)
        if self.args.worker_class:
            self.env["HCP_WEB_WORKER_CLASS"] = self.args.worker_class
        subprocess.run([str(BIN / "hcp"), "db", "upgrade"], env=self.env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._make_org()

    def _redis_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _make_org(self) -> None:
        """A department with two handlers, a device allowed far more than the bench sends, a manager."""
        script = (
            "import json\n"
            "from service import create_app\n"
            "from service.org import add_department, add_device, add_user\n"
            "from service.auth.access import issue_token\n"
            "from service.extensions import db\n"
            "app = create_app()\n"
            "with app.app_context():\n"
            "    d = add_department('bench', '压测中心', None)\n"
            "    add_user('bench-h1', 'bench-pass-1', 'handler', d)\n"
            "    add_user('bench-h2', 'bench-pass-1', 'handler', d)\n"
            "    m = add_user('bench-mgr', 'bench-pass-1', 'manager', d)\n"
            "    dev, key = add_device('bench-kiosk', d, 'hall_terminal', '1', '100000000/minute')\n"
            f"    keys = [add_device(f'bench-kiosk-{{i}}', d, 'hall_terminal', str(i % 40 + 2), '100000000/minute')[1]"
            f" for i in range({self.args.kiosks if self.args.kiosks > 1 else 0})]\n"
            "    db.session.flush()\n"
            "    token, _ = issue_token(m)\n"
            "    db.session.commit()\n"
            "    print(json.dumps({'key': key, 'keys': keys, 'device_id': dev.id, 'department_id': d.id,\n"
            "                      'token': token}))\n"
        )
        out = subprocess.run([PYTHON, "-c", script], env=self.env, cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        self.org = json.loads(out.strip().splitlines()[-1])

    def start_services(self) -> None:
        gunicorn = [PYTHON, "-m", "gunicorn", "-c", "python:config.gunicorn"]
        self.hcp_port, self.base_port = free_port(), free_port()
        self.hcp = self.procs.start("web-hcp", gunicorn + ["--bind", f"127.0.0.1:{self.hcp_port}",
                                                           "service:create_app()"],
                                    {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "metrics-hcp")})
        self.base = self.procs.start("web-baseline", gunicorn + ["--bind", f"127.0.0.1:{self.base_port}",
                                                                 "bench.baseline:create_app()"],
                                     {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "metrics-base"),
                                      "BENCH_BASELINE_DSN": self.dsn,
                                      "BENCH_DEVICE_ID": str(self.org["device_id"]),
                                      "BENCH_DEPARTMENT_ID": str(self.org["department_id"])})
        self.workers = []
        for n in (1, 2):
            self.workers.append(self.procs.start(
                f"worker-{n}",
                [PYTHON, "-m", "celery", "-A", "workers", "worker", "--loglevel=INFO", "--concurrency=1",
                 "-Q", self.env["HCP_INSTANCE"], "-n", f"bench{n}-{self.run_id}@%h",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                {**self.env, "HCP_LOG_LEVEL": "INFO"}))
        self.hcp_url = f"http://127.0.0.1:{self.hcp_port}"
        self.base_url = f"http://127.0.0.1:{self.base_port}"
        wait_for(lambda: http_ok(self.hcp_url + "/readyz"), 60, "hcp gunicorn")
        wait_for(lambda: http_ok(self.base_url + "/nope") or self._answers(self.base_url), 60, "baseline gunicorn")
        for n in (1, 2):
            wait_for(lambda: "ready." in self.procs.log(f"worker-{n}") or self.workers[n - 1].poll() is not None,
                     60, f"celery worker {n}")
            if self.workers[n - 1].poll() is not None:
                raise RuntimeError(self.procs.log(f"worker-{n}")[-2000:])

    def _answers(self, url: str) -> bool:
        try:
            requests.get(url + "/", timeout=1)
            return True
        except requests.RequestException:
            return False

    # ---- measurements ----------------------------------------------------------------
    def _server_side(self, server) -> dict[str, list[int]]:
        """The processes that work for a request, by part: what the machine spends on one."""
        celery = [p for w in self.workers for p in [w.pid] + children(w.pid)]
        postgres = [int(d.name) for d in Path("/proc").iterdir()
                    if d.name.isdigit() and _comm(d) == "postgres"]  # all of the server: nothing else uses it meanwhile
        return {"web": children(server.pid), "postgres": postgres, "redis": [self.redis.pid], "celery": celery}

    def wrk(self, url: str, path: str, key: str, seconds: float, nonce: str) -> dict:
        result = self.measured(url, lambda: self._wrk(url, path, key, seconds, nonce))
        result["cpu_ms"] = result["server_cpu_ms"]["web"]
        return result

    def measured(self, url: str, run, server=None) -> dict:
        """``run()``'s wrk result with the CPU per request of each server-side part behind
        ``url`` (``server``: its gunicorn, when it is neither hcp's nor the baseline's): what a
        dedicated core would make of it, whatever else the machine was doing meanwhile
        (``server_cpu_ms``: web workers, PostgreSQL, Redis, Celery workers)."""
        parts = self._server_side(server or (self.hcp if url == self.hcp_url else self.base))
        before = {name: cpu_seconds(pids) for name, pids in parts.items()}
        result = run()
        result["server_cpu_ms"] = {name: 1000 * (cpu_seconds(pids) - before[name]) / max(1, result["requests"])
                                   for name, pids in parts.items()}
        return result

    def _wrk(self, url: str, path: str, key: str, seconds: float, nonce: str, comment_share: float = 0.0,
             kiosks: list[str] | None = None) -> dict:
        env = {"BENCH_PATH": path, "BENCH_KEY": key, "BENCH_NONCE": nonce,
               "BENCH_RATED_AT": self.rated_at, "BENCH_COMMENT_SHARE": str(comment_share)}
        if kiosks:  # many kiosks, each rating rated when it is posted
            env.update({"BENCH_KEYS": ",".join(kiosks), "BENCH_RATED_NOW": "1"})
        return self.wrk_script(url, "intake.lua", env, seconds)

    def wrk_script(self, url: str, script: str, env: dict, seconds: float) -> dict:
        """wrk with ``bench/SCRIPT`` against ``url`` for ``seconds``: the script's BENCH_RESULT
        (bench/result.lua) and its requests per second."""
        cmd = [WRK, f"-t{self.args.wrk_threads}", f"-c{self.args.connections}", f"-d{int(seconds)}s",
               "--timeout", "10s", "-s", str(ROOT / "bench" / script), url]
        out = subprocess.run(cmd, env={**os.environ, "BENCH_LUA_DIR": str(ROOT / "bench"), **env},
                             capture_output=True, text=True, timeout=seconds + 60).stdout
        match = re.search(r"BENCH_RESULT (\{.*\})", out)
        if not match:
            raise RuntimeError("wrk gave no result:\n" + out)
        result = json.loads(match.group(1))
        result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
        return result

    def single_intake(self) -> None:
        seconds = self.args.seconds
        # Warm both up (imports, pools, caches) before anything is counted.
        self.wrk(self.base_url, "/baseline", "", 2, self._nonce())
        self.wrk(self.hcp_url, "/api/v1/ratings", self.org["key"], 2, self._nonce())
        self.wrk(self.base_url, "/floor", "", 2, self._nonce())
        base_runs, hcp_runs, floor_runs = [], [], []
        self.intake_started = datetime.now(timezone.utc)
        for round_no in range(self.args.rounds):
            floor_runs.append(self.wrk(self.base_url, "/floor", "", seconds, self._nonce()))
            base_runs.append(self.wrk(self.base_url, "/baseline", "", seconds, self._nonce()))
            nonce = self._nonce()
            self.single_nonces.append(nonce)
            profiler = self._start_profile() if (self.args.profile and round_no == 0) else None
            hcp_runs.append(self.wrk(self.hcp_url, "/api/v1/ratings", self.org["key"], seconds, nonce))
            if profiler:
                self._finish_profile(profiler)
        # Neighbours on a shared machine only ever slow a run down: keep each side's best.
        base = max(base_runs, key=lambda r: r["rps"])
        hcp = max(hcp_runs, key=lambda r: r["rps"])
        ratio = hcp["rps"] / base["rps"]
        self.rows.append(Row("intake req/s (single)", f"{hcp['rps']:.0f}", f"{base['rps']:.0f}", ratio,
                             "≥ 1.0×", ratio >= 1.0, {"hcp": hcp_runs, "baseline": base_runs}))
        floor = max(floor_runs, key=lambda r: r["rps"])
        self.rows.append(Row("ceiling: Flask view, no database", "", f"{floor['rps']:.0f}",
                             floor["rps"] / base["rps"], "(vs baseline)", None, {"floor": floor_runs}))
        self.rows.append(Row("intake p50 / p99 ms", f"{hcp['p50_us'] / 1000:.1f} / {hcp['p99_us'] / 1000:.1f}",
                             f"{base['p50_us'] / 1000:.1f} / {base['p99_us'] / 1000:.1f}",
                             base["p99_us"] / hcp["p99_us"] if hcp["p99_us"] else None, "(p99 ratio)", None))
        self.rows.append(Row("intake web CPU ms / rating", f"{hcp['cpu_ms']:.2f}", f"{base['cpu_ms']:.2f}",
                             base["cpu_ms"] / hcp["cpu_ms"] if hcp["cpu_ms"] else None, "(CPU ratio)", None))
        self.rows.append(Row("server CPU ms / rating (web+PG+Redis+Celery)", _split(hcp), _split(base),
                             sum(base["server_cpu_ms"].values()) / sum(hcp["server_cpu_ms"].values()),
                             "(CPU ratio)", None))
        self.rows.append(Row("ceiling's server CPU ms / request", "", _split(floor), None, "", None))
        errors = sum(r["non2xx"] + r["socket_errors"] for r in hcp_runs)
        if errors:
            self.rows.append(Row("intake non-2xx / socket errors", str(errors), "", None, "0", False))

    def _nonce(self) -> str:
        return secrets.token_hex(4)

    def _start_profile(self, name: str = "intake", pid: int | None = None):
        """py-spy on ``pid`` (the hcp gunicorn by default) and its children for one round:
        ``DIR/NAME.folded``, summarised by ``_finish_profile``."""
        spy = shutil.which("py-spy") or str(BIN / "py-spy")
        outdir = Path(self.args.profile)
        outdir.mkdir(parents=True, exist_ok=True)
        raw = outdir / f"{name}.folded"
        # "wall": every sampled thread, waiting included (round trips show up);
        # "gil": only the thread holding the GIL (where the CPU goes).
        mode = ["--gil"] if self.args.profile_mode == "gil" else []
        proc = subprocess.Popen([spy, "record", "--pid", str(pid or self.hcp.pid), "--subprocesses",
                                 "--format", "raw", "--nonblocking", "--rate", "200", "-d", str(int(self.args.seconds)),
                                 "-o", str(raw)] + mode, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc.profile_name, proc.profile_raw = name, raw
        return proc

    def _finish_profile(self, proc, marks: tuple[str, ...] = REQUEST_FRAMES) -> None:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.terminate()
        summary = summarise_profile(proc.profile_raw, marks=marks)
        (Path(self.args.profile) / f"{proc.profile_name}-summary.txt").write_text(summary)
        print(summary)

    def profiled(self, name: str, run):
        """``run()``, with the hcp web workers and the Celery workers sampled meanwhile when
        ``--profile DIR`` is given (``DIR/NAME-web-summary.txt``, ``DIR/NAME-celery-summary.txt``)."""
        if not self.args.profile:
            return run()
        spies = [(self._start_profile(f"{name}-web"), REQUEST_FRAMES)]
        spies += [(self._start_profile(f"{name}-celery-{n}", w.pid), TASK_FRAMES)
                  for n, w in enumerate(self.workers, 1)]
        try:
            return run()
        finally:
            for proc, marks in spies:
                self._finish_profile(proc, marks)

    def batch_intake(self) -> None:
        """500-rating batches through hcp vs executemany of the same rows, same concurrency.

        ``--rounds`` rounds of ``--batches`` batches per side, alternately, fresh rows each
        round; each side's best round is kept, as for single ratings.
        """
        n_batches, conc = self.args.batches, self.args.batch_concurrency
        headers = {"Authorization": f"Bearer {self.org['key']}", "Content-Type": "application/json"}
        local = threading.local()
        conns = []

        def post(body: bytes) -> int:
            if not hasattr(local, "s"):
                local.s = requests.Session()
            resp = local.s.post(self.hcp_url + "/api/v1/ratings/batch", data=body, headers=headers, timeout=60)
            resp.raise_for_status()
            return sum(1 for r in resp.json()["results"] if r["status"] == "created")

        def raw(rows: list[dict]) -> int:
            if not hasattr(local, "conn"):  # one connection per client thread, kept (as hcp's pool does)
                local.conn = psycopg.connect(self.dsn)
                conns.append(local.conn)
            with local.conn.transaction(), local.conn.cursor() as cur:  # one transaction per 500
                cur.executemany(RAW_INSERT, rows)
            return len(rows)

        hcp_runs, raw_runs = [], []
        with ThreadPoolExecutor(conc) as pool:
            # Warm up (connections, sessions), not counted.
            list(pool.map(post, [json.dumps({"ratings": [self._rating() for _ in range(50)]}).encode()
                                 for _ in range(conc)]))
            list(pool.map(raw, [[self._raw_row(self._rating()) for _ in range(50)] for _ in range(conc)]))
            pids = children(self.hcp.pid)
            for _ in range(self.args.rounds):
                raw_batches = [[self._raw_row(self._rating()) for _ in range(500)] for _ in range(n_batches)]
                hcp_bodies = [json.dumps({"ratings": [self._rating() for _ in range(500)]}).encode()
                              for _ in range(n_batches)]
                started, cpu_started = time.perf_counter(), time.process_time()
                created = sum(pool.map(raw, raw_batches))
                # The raw client's CPU (this process, all threads): psycopg's side of executemany.
                raw_runs.append({"rate": created / (time.perf_counter() - started),
                                 "cpu_ms": 1000 * (time.process_time() - cpu_started) / max(1, created),
                                 "created": created})
                cpu_before, started = cpu_seconds(pids), time.perf_counter()
                created = sum(pool.map(post, hcp_bodies))
                hcp_runs.append({"rate": created / (time.perf_counter() - started),
                                 "cpu_ms": 1000 * (cpu_seconds(pids) - cpu_before) / max(1, created),
                                 "created": created})
        for conn in conns:
            conn.close()
        hcp, base = max(hcp_runs, key=lambda r: r["rate"]), max(raw_runs, key=lambda r: r["rate"])
        ratio = hcp["rate"] / base["rate"]
        self.rows.append(Row("batch ratings/s (500/request)", f"{hcp['rate']:.0f}", f"{base['rate']:.0f}", ratio,
                             "≥ 0.5×", ratio >= 0.5,
                             {"batches": n_batches, "concurrency": conc, "hcp": hcp_runs, "raw": raw_runs}))
        self.rows.append(Row("batch CPU ms / rating (web vs raw client)", f"{hcp['cpu_ms']:.2f}",
                             f"{base['cpu_ms']:.2f}", base["cpu_ms"] / hcp["cpu_ms"] if hcp["cpu_ms"] else None,
                             "(CPU ratio)", None))

    def _rating(self) -> dict:
        import random
        bad = random.random() < 0.03
        body = {"client_id": str(uuid.uuid4()), "level": random.randint(1, 2) if bad else random.randint(3, 5),
                "rated_at": self.rated_at, "staff_no": "A0107"}
        if bad:
            body["comment"] = "排队时间太长，窗口只开了一个"
        return body

    def _raw_row(self, body: dict) -> dict:
        return {**body, "device_id": self.org["device_id"], "department_id": self.org["department_id"],
                "body_hash": secrets.token_hex(32), "channel": "hall_terminal", "window": "1",
                "comment": body.get("comment")}

    def routing(self) -> None:
        """Receipt → case, for every bad rating of the single-intake hcp rounds."""
        like = [n + "%" for n in self.single_nonces]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            def counts():
                return conn.execute(
                    "SELECT count(*), count(c.id) FROM ratings r LEFT JOIN cases c ON c.rating_id = r.id "
                    "WHERE r.negative AND r.client_id LIKE ANY(%s)", (like,)).fetchone()

            last = [None]

            def routed():
                # Done when every bad rating has its case and none came in since the last
                # poll: a request wrk left in flight may commit after wrk returned.
                total, cases = counts()
                settled, last[0] = total == last[0], total
                return settled and cases >= total
            try:
                wait_for(routed, 60, "every bad rating to be routed", interval=0.5)
            except RuntimeError:
                pass
            p50, p95, n, assigned = conn.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.95) WITHIN GROUP "
                "(ORDER BY d), count(*), count(*) FILTER (WHERE assigned) FROM ("
                " SELECT extract(epoch FROM c.created_at - r.received_at) AS d, c.status = 'assigned' AS assigned"
                " FROM ratings r JOIN cases c ON c.rating_id = r.id"
                " WHERE r.negative AND r.client_id LIKE ANY(%s)) t", (like,)).fetchone()
            total, _ = counts()
        ok = n == total and p95 is not None and p95 < 1.0
        self.rows.append(Row("routing receipt→case p50 / p95 ms",
                             f"{(p50 or 0) * 1000:.0f} / {(p95 or 0) * 1000:.0f}", f"{n}/{total} routed", None,
                             "p95 < 1000", ok, {"routed": n, "bad": total, "assigned": assigned}))

    def figures(self) -> None:
        try:
            from bench import figures  # provided with the figures queries
        except ImportError:
            self.rows.append(Row("figures summary / breakdown p95", "not yet", "", None, "p95 < 300 ms", None))
            return
        for row in figures.run(self):
            self.rows.append(row if isinstance(row, Row) else Row(**row))

    def case_export(self) -> None:
        from bench import cases

        for row in cases.run(self):
            self.rows.append(Row(**row))

    def hotspots(self) -> None:
        from bench import hotspots

        for row in hotspots.run(self):
            self.rows.append(Row(**row))

    def exchange(self) -> None:
        from bench import exchange

        for row in exchange.run(self):
            self.rows.append(Row(**row))

    def suspicious_cost(self) -> None:
        """The single intake with term counting and the suspicious rules on vs both off, in
        alternating rounds of this run, the same bodies (``--comment-share`` with comments)."""
        gunicorn = [PYTHON, "-m", "gunicorn", "-c", "python:config.gunicorn"]
        port = free_port()
        off = self.procs.start("web-hcp-rules-off", gunicorn + ["--bind", f"127.0.0.1:{port}", "service:create_app()"],
                               {**self.env, "HCP_SUSPICIOUS_RULES": "off", "HCP_TERM_COUNTING": "off",
                                "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "metrics-off")})
        off_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(off_url + "/readyz"), 60, "hcp gunicorn (rules off)")
        share, kiosks = self.args.comment_share, self.org.get("keys") or None
        # Warm up both (the worker's tokenizer too; with many kiosks, long enough for both sides'
        # device caches to hold them all).
        for url in (off_url, self.hcp_url):
            self._wrk(url, "/api/v1/ratings", self.org["key"], 12 if kiosks else 2, self._nonce(), share, kiosks)

        def measured(url: str) -> dict:
            # The CPU per rating of each server-side part beside the rate (the rules' work is the
            # workers' and the database's, not the request's): a measure the machine's swings
            # move far less than the rates.
            result = self.measured(url, lambda: self._wrk(url, "/api/v1/ratings", self.org["key"], self.args.seconds,
                                                          self._nonce(), share, kiosks),
                                   server=off if url == off_url else None)
            result["celery_cpu_ms"] = result["server_cpu_ms"]["celery"]
            return result

        on_runs, off_runs = [], []
        for _ in range(self.args.suspicious_rounds):
            off_runs.append(measured(off_url))
            on_runs.append(measured(self.hcp_url))
        off.send_signal(signal.SIGTERM)
        best_on, best_off = (max(r, key=lambda x: x["rps"]) for r in (on_runs, off_runs))
        ratio = best_on["rps"] / best_off["rps"]
        median = (sorted(r["rps"] for r in on_runs)[len(on_runs) // 2]
                  / sorted(r["rps"] for r in off_runs)[len(off_runs) // 2])
        where = f", {len(kiosks)} kiosks" if kiosks else ""
        self.rows.append(Row(f"intake req/s, term counting + suspicious rules on vs off "
                             f"({self.args.suspicious_rounds} rounds{where}, median ratio {median:.2f}×)",
                             f"{best_on['rps']:.0f}", f"{best_off['rps']:.0f}", ratio, "≥ 0.9×", ratio >= 0.9,
                             {"on": on_runs, "off": off_runs, "comment_share": share}))
        cpu_on, cpu_off = (min(r["celery_cpu_ms"] for r in runs) for runs in (on_runs, off_runs))
        self.rows.append(Row("celery CPU ms / rating, counting + rules on vs off", f"{cpu_on:.2f}", f"{cpu_off:.2f}",
                             None, "", None))
        # Over all rounds of each side: server CPU per rating (a task spilling into the next
        # round is counted there; the sides alternate, so it evens out).
        total = {side: {name: sum(r["server_cpu_ms"][name] * r["requests"] for r in runs)
                        / max(1, sum(r["requests"] for r in runs)) for name in runs[0]["server_cpu_ms"]}
                 for side, runs in (("on", on_runs), ("off", off_runs))}
        self.rows.append(Row("server CPU ms / rating, counting + rules on vs off (all rounds)",
                             _split({"server_cpu_ms": total["on"]}), _split({"server_cpu_ms": total["off"]}),
                             sum(total["off"].values()) / sum(total["on"].values()), "(CPU ratio)", None))

    def applications(self) -> None:
        from bench import applications

        for row in applications.run(self):
            self.rows.append(Row(**row))

    def staff_token(self) -> str:
        return self.org["token"]

    def memory(self) -> None:
        web = max((peak_rss_mb(p) for p in children(self.hcp.pid)), default=0.0)
        base = max((peak_rss_mb(p) for p in children(self.base.pid)), default=0.0)
        celery = 0.0
        for w in self.workers:
            celery = max([celery, peak_rss_mb(w.pid)] + [peak_rss_mb(p) for p in children(w.pid)])
        self.rows.append(Row("peak RSS web worker MB", f"{web:.0f}", f"{base:.0f}", None, "< 150", web < 150))
        self.rows.append(Row("peak RSS celery worker MB", f"{celery:.0f}", "", None, "< 200", celery < 200))

    # ---- report ----------------------------------------------------------------------
    def report(self) -> str:
        head = ("measure", "hcp", "baseline", "ratio", "target", "")
        lines = [head] + [(r.name, r.hcp, r.baseline, f"{r.ratio:.2f}×" if r.ratio is not None else "",
                           r.target, {True: "ok", False: "MISS", None: ""}[r.ok]) for r in self.rows]
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        out = [" | ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
        out.insert(1, "-+-".join("-" * w for w in widths))
        return "\n".join(out)

    def machine(self) -> str:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "?")
        mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal")), 0)
        gun = subprocess.run([PYTHON, "-c", "import config.gunicorn as g; print(g.workers, g.threads, g.worker_class)"],
                             env=self.env, cwd=ROOT, capture_output=True, text=True).stdout.split()
        return (f"machine: {os.cpu_count()} CPUs ({model}), {mem} MB RAM, load avg {os.getloadavg()[0]:.2f}; "
                f"gunicorn {gun[2] if len(gun) > 2 else '?'} × {gun[0] if gun else '?'} workers × "
                f"{gun[1] if len(gun) > 1 else '?'} threads; wrk -t{self.args.wrk_threads} "
                f"-c{self.args.connections}, {self.args.rounds} × {self.args.seconds}s rounds (best kept)")

    def cleanup(self) -> None:
        self.procs.stop_all()
        try:
            with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        except psycopg.Error as err:
            print(f"could not drop {self.dbname}: {err}", file=sys.stderr)
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _split(run: dict) -> str:
    """A run's server-side CPU per request as "total = web + PostgreSQL + Redis + Celery"."""
    part = run["server_cpu_ms"]
    return (f"{sum(part.values()):.2f} = {part['web']:.2f} + {part['postgres']:.2f} + "
            f"{part['redis']:.2f} + {part['celery']:.2f}")


RAW_INSERT = """
INSERT INTO ratings (client_id, body_hash, device_id, department_id, channel, "window", level, negative,
                     rated_at, rated_date, received_at, staff_no, comment, real_name)
VALUES (%(client_id)s, %(body_hash)s, %(device_id)s, %(department_id)s, %(channel)s, %(window)s,
        %(level)s, %(level)s <= 2, %(rated_at)s,
        (%(rated_at)s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date, now(), %(staff_no)s, %(comment)s, false)
ON CONFLICT (client_id) DO NOTHING
"""


def folded_stacks(text: str) -> list[tuple[list[str], int]]:
    """py-spy's folded stacks (``frame;frame;... count`` a line) as (frames, count) pairs.

    Frame names hold spaces (``bind (socket.py:12)``, a process's command line), and a
    command line may even hold a line break, so the count is split off the right end of
    a line, and a line that does not end in a count continues on the next one.
    """
    stacks, pending = [], ""
    for line in text.split("\n"):
        line = pending + line.rstrip("\r")
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            pending = line + "\n" if line.strip() else ""
            continue
        pending = ""
        stacks.append((stack.split(";"), int(count)))
    return stacks


def summarise_profile(path: Path, top: int = 25, marks: tuple[str, ...] = REQUEST_FRAMES) -> str:
    """Inclusive share of samples per function (hcp/framework frames), from py-spy's folded
    stacks; only samples with a frame naming one of ``marks`` (idle threads are left out)."""
    total, inclusive, own = 0, {}, {}
    if not path.exists():
        return "no profile recorded"
    for frames, n in folded_stacks(path.read_text()):
        if not any(mark in f for f in frames for mark in marks):
            continue  # idle threads waiting for connections or tasks
        total += n
        seen = set()
        for frame in frames:
            name = re.sub(r" \((.*)/site-packages/", " (", frame)
            name = name.replace(str(ROOT) + "/", "")
            if name not in seen:
                inclusive[name] = inclusive.get(name, 0) + n
                seen.add(name)
        own_name = frames[-1].replace(str(ROOT) + "/", "")
        own[own_name] = own.get(own_name, 0) + n
    if not total:
        return "profile: no request-handling samples"
    out = [f"profile: {total} request-handling samples", "", "inclusive (function, % of request time):"]
    for name, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * n / total:5.1f}%  {name}")
    out += ["", "self time:"]
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * n / total:5.1f}%  {name}")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of one intake round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per side, single and batch (best kept)")
    parser.add_argument("--suspicious-rounds", type=int, default=6,
                        help="rounds per side of the term counting + suspicious rules row (best kept)")
    parser.add_argument("--comment-share", type=float, default=0.33,
                        help="share of good ratings with a comment in that row")
    parser.add_argument("--kiosks", type=int, default=1,
                        help="kiosks the suspicious row's ratings come from (more than 1: random kiosk per rating, "
                             "rated when posted; 1: the intake row's one kiosk and fixed rated_at, one long burst)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=40, help="500-rating batches per side and round")
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: config/gunicorn.py)")
    parser.add_argument("--threads", type=int, help="gunicorn threads per worker")
    parser.add_argument("--worker-class", help="gunicorn worker class")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy the hcp web workers in the first intake round, and the web and "
                             "Celery workers in the first PUT /projects round")
    parser.add_argument("--profile-mode", choices=["wall", "gil"], default="wall")
    parser.add_argument("--only", choices=["intake", "batch", "suspicious", "exchange", "applications"],
                        help="run one measurement (plus memory)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the logs directory")
    args = parser.parse_args(argv)
    if not os.path.exists(WRK):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    bench = Bench(args)
    started = time.monotonic()
    try:
        bench.setup()
        bench.start_services()
        if args.only in (None, "intake"):
            bench.single_intake()
            bench.routing()
        if args.only in (None, "batch"):
            bench.batch_intake()
        if args.only in (None, "suspicious"):
            bench.suspicious_cost()
        if args.only is None:
            bench.figures()
            bench.case_export()
            bench.hotspots()
        if args.only in (None, "exchange"):
            bench.exchange()
        if args.only in (None, "applications"):
            bench.applications()
        bench.memory()
        print()
        print(bench.machine())
        print(bench.report())
        logs = bench.tmp if args.keep else "a removed temp dir"
        print(f"(bench took {time.monotonic() - started:.0f}s; logs in {logs})")
        if args.json:
            out = {"machine": bench.machine(), "rows": [r.__dict__ for r in bench.rows]}
            Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=1, default=str))
        return 0
    finally:
        bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
