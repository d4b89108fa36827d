"""``hcp run``: web (gunicorn), a Celery worker and beat together, for one machine."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade


@click.command()
@click.option("--bind", help="address:port for the web server (default HCP_BIND)")
@click.option("--concurrency", default=2, show_default=True, help="Celery worker processes")
@click.option("--no-migrate", is_flag=True, help="skip 'db upgrade' before starting")
@with_appcontext
def run(bind, concurrency, no_migrate):
    """Start web + worker + beat; Ctrl-C stops all three."""
    settings = current_app.config["HCP_SETTINGS"]
    if not no_migrate:
        upgrade()
    bind = bind or settings.bind
    env = dict(os.environ, HCP_VAR_DIR=str(settings.var_dir))
    python = sys.executable
    commands = {
        "web": [python, "-m", "gunicorn", "-c", "python:config.gunicorn", "--bind", bind, "service:create_app()"],
        "worker": [python, "-m", "celery", "-A", "workers", "worker", "--loglevel=INFO",
                   f"--concurrency={concurrency}", "-Q", settings.instance],
        "beat": [python, "-m", "celery", "-A", "workers", "beat", "--loglevel=INFO",
                 "-s", str(settings.var_dir / "celerybeat-schedule")],
    }
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
    click.echo(f"hcp running on http://{bind}/ (web, worker, beat); Ctrl-C to stop", err=True)

    def stop(*_):
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        code = max((p.returncode or 0) for p in procs.values() if p.poll() is not None)
    finally:
        stop()
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    sys.exit(code)
