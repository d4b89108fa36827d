"""Celery on the app's side: the Flask app's Celery app, and tasks sent to it by name.

Domain and web code never import ``workers`` (the tasks import the domain, not the other way
round): they name the task here and the broker carries it, as Superset's and Redash's
handlers do. ``celery_init_app`` is Flask's documented recipe; the worker processes add
their beat schedule on top (workers/app.py).
"""
from __future__ import annotations

import time
from contextlib import AbstractContextManager

from celery import Celery, Task
from flask import Flask, current_app

from service.observability import worker as observability
from service.shared_redis import shared

TASKS_MODULE = "workers.tasks"
PENDING_TTL = 60  # seconds a coalesced task's flag outlives a task that never started


def _tune_embedded_broker(broker_url: str) -> None:
    """The embedded broker: its SQLite file in WAL mode (kept in the file) and a short poll.

    In SQLite's default journal mode a polling worker's read blocks every publish until
    it ends; with WAL, readers never block the writer, so intake publishes do not fail
    with "database is locked" while the worker polls.
    """
    prefix = "sqla+sqlite:///"
    if not broker_url.startswith(prefix) or broker_url == prefix:
        return
    import sqlite3

    from kombu.transport import sqlalchemy as kombu_sqla

    # The file is polled: every 0.1 s rather than kombu's 1 s, or a worker with prefetch 1
    # takes one routing task a second and a burst of bad ratings queues up. The transport
    # hands every transport option to create_engine, so the interval is set on the class.
    kombu_sqla.Transport.polling_interval = 0.1
    conn = sqlite3.connect(broker_url[len(prefix):], timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def celery_init_app(app: Flask) -> Celery:
    """Celery made from the Flask app: every task runs inside ``app.app_context()``."""
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    _tune_embedded_broker(app.config["CELERY"]["broker_url"])
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.conf.include = [TASKS_MODULE]  # a name: imported by the worker, not here
    celery_app.set_default()
    observability.connect()
    app.extensions["celery"] = celery_app
    return celery_app


def task_name(task: str) -> str:
    """The registered name of a task of workers/tasks.py (``route_rating`` → ``workers.tasks.route_rating``)."""
    return f"{TASKS_MODULE}.{task}"


def send(task: str, *args, **options):
    """Send ``task`` (a function name in workers/tasks.py) with ``args`` through this app's broker.

    ``options`` are Celery's publishing options (``producer``, ``retry``, ``headers``, ...).
    This Flask app's own Celery app, not Celery's process-wide "current app", which any
    other Celery app made in the same process would replace.
    """
    return current_app.extensions["celery"].send_task(task_name(task), args=args, **options)


def producer() -> AbstractContextManager:
    """One producer (one broker connection from the pool) for many sends."""
    return current_app.extensions["celery"].producer_or_acquire()


# SET NX and, when the flag was there already, its remaining time: one command, one round trip.
_TAKE_FLAG = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return -1 end
return redis.call('PTTL', KEYS[1])
"""


def send_coalesced(name: str, task: str, *args, countdown: float, fallback_args: tuple = (), **options) -> bool:
    """Send ``task`` to start in ``countdown`` seconds unless one sent under ``name`` has not
    started yet: many calls within a task's wait share it (a Redis flag set NX, cleared by
    the task when it starts, ``coalesced_started``). The task must do the work of every call
    made before it starts. Whether a task was sent; without Redis (HCP_REDIS_URL unset or
    failing, service.shared_redis) ``task`` is sent at once with ``fallback_args``. A send
    that fails clears the flag again and raises, as ``send`` does.
    """
    flags = shared()
    key = flags.key(f"pending:{name}")
    # A task sent under the flag cannot start before its countdown from the moment the flag
    # was set, so for half of it (a margin for the workers' clocks) the flag is known to be
    # set and this process does not ask again.
    known = current_app.extensions.setdefault("hcp_coalesced_until", {})
    if time.monotonic() < known.get(key, 0.0):
        return False

    # -1 when this call set the flag, else the flag's remaining milliseconds (how long ago
    # another call set it), or -2 when it was cleared meanwhile.
    answer = flags.call(lambda r: r.eval(_TAKE_FLAG, 1, key, PENDING_TTL), unavailable=None)
    if answer is None:
        send(task, *fallback_args, **options)
        return True
    if answer != -1:
        # A task is waiting to start: it does this call's work too. Known set until half its
        # countdown after it was set (by Redis's clock, as an age: no two machines' clocks).
        age = PENDING_TTL - answer / 1000 if answer >= 0 else countdown
        known[key] = time.monotonic() + countdown / 2 - age
        return False
    try:
        send(task, *args, countdown=countdown, **options)
    except Exception:
        flags.call(lambda r: r.delete(key))  # the next call sends one again
        raise
    known[key] = time.monotonic() + countdown / 2
    return True


def coalesced_started(name: str) -> None:
    """A task sent by ``send_coalesced(name, …)`` is starting: calls from now on send another.

    Call it before reading the work, so a call whose work it misses sends the next task.
    """
    flags = shared()
    flags.call(lambda r: r.delete(flags.key(f"pending:{name}")))
