"""hcp's Celery workers: ``celery -A workers worker`` and ``celery -A workers beat``.

The Celery app is made from the Flask app on first use (``workers.celery``), so that
importing a task module from the web process does not build a second Flask app.
"""


def __getattr__(name):
    if name in ("celery", "app"):
        from workers.entry import celery
        return celery
    raise AttributeError(name)
