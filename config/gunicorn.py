"""gunicorn settings for hcp's web process; each may be overridden by an HCP_* variable
(read in config/settings.py, ``process_settings``).

``gunicorn -c python:config.gunicorn 'service:create_app()'``. Defaults come from
``make bench`` (docs/benchmarks.md): one gthread worker process per core (the GIL lets
a process use one core at most; more processes only add memory and context switches),
each with 8 threads, because a rating spends part of its time waiting on PostgreSQL
and Redis and the threads overlap those waits.
"""
import json
import os
import shutil
from pathlib import Path

from config.settings import process_settings

_settings = process_settings()
bind = _settings.bind
workers = _settings.web_workers
threads = _settings.web_threads
worker_class = _settings.web_worker_class
timeout = 30
graceful_timeout = 20
keepalive = 5
backlog = _settings.web_backlog
# Workers are recycled now and then, so a slow leak can never grow without bound
# (0 turns it off: make bench counts each worker's CPU time, which a recycle would reset).
max_requests = _settings.web_max_requests
max_requests_jitter = max_requests // 10

# gunicorn's control socket is one fixed path per user; several hcp instances on one
# machine (or a test run beside a service) would fight over it, and hcp does not use it.
control_socket_disable = True

# Access log as one JSON object per line, like the application's own logs, with the
# request id that the app's log lines and the routing task's log lines carry too.
accesslog = _settings.access_log
access_log_format = json.dumps({
    "ts": "%(t)s", "logger": "gunicorn.access", "remote": "%(h)s", "method": "%(m)s",
    "path": "%(U)s", "status": "%(s)s", "bytes": "%(B)s", "duration_ms": "%(M)s",
    "request_id": "%({x-request-id}o)s",
})
errorlog = "-"

# Prometheus counters of all workers of this server are added up from files in this
# directory; it must exist (and be empty) before the workers import prometheus_client.
_metrics_dir = Path(os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(_settings.var_dir / "metrics-web")))


def on_starting(server):
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
