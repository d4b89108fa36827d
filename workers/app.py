"""What a worker or beat process adds to the app's Celery app (service/dispatch.py).

Every task runs inside ``app.app_context()`` (the recipe in ``dispatch.celery_init_app``)
so it uses the same settings, database session and extensions as the web process; the
session is removed when the context ends. Beat reads its schedule from here.
"""
from celery import Celery
from flask import Flask

from workers.schedule import beat_schedule


def worker_celery(app: Flask) -> Celery:
    """The Flask app's Celery app with the beat schedule of workers/schedule.py."""
    celery_app = app.extensions["celery"]
    celery_app.conf.beat_schedule = beat_schedule(app.config["HCP_SETTINGS"])
    return celery_app
