"""The module ``celery -A workers`` ends up in: one Flask app, and its Celery app."""
import atexit
import os
import shutil

from config.settings import process_settings

# Prefork children count tasks in files under this directory, and the worker's main
# process adds them up when scraped; it must be set before prometheus_client is imported.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics = process_settings().var_dir / f"metrics-worker-{os.getpid()}"
    shutil.rmtree(_metrics, ignore_errors=True)
    _metrics.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics)
    atexit.register(shutil.rmtree, _metrics, True)

from service import create_app  # noqa: E402 — after the environment above
from workers.app import worker_celery  # noqa: E402

flask_app = create_app()
celery = worker_celery(flask_app)
