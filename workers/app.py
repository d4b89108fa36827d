"""Celery made from the Flask app, the way Flask documents it.

Every task runs inside ``app.app_context()`` so it uses the same settings, database
session and extensions as the web process; the session is removed when the context ends.
"""
from celery import Celery, Task
from flask import Flask

from service.observability import worker as observability
from workers.schedule import beat_schedule


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
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    _tune_embedded_broker(app.config["CELERY"]["broker_url"])
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.conf.beat_schedule = beat_schedule(app.config["HCP_SETTINGS"])
    celery_app.conf.include = ["workers.tasks"]
    celery_app.set_default()
    observability.connect()
    app.extensions["celery"] = celery_app
    return celery_app
