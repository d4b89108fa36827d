"""What a Celery process adds to its tasks: the request id in its logs, and metrics.

Connected once by ``celery_init_app``; the handlers run in whichever process executes
the task (a prefork child, or the caller for an eager ``apply``).
"""
from __future__ import annotations

import logging
import os

from celery import signals

from config.settings import process_settings
from service.observability import metrics
from service.observability.jsonlog import request_id_var

log = logging.getLogger(__name__)
_connected = False


def task_request_id(request) -> str | None:
    """The id the intake sent with the task (a message header, seen as a request attribute)."""
    rid = getattr(request, "request_id", None)
    if not rid and isinstance(getattr(request, "headers", None), dict):
        rid = request.headers.get("request_id")
    return rid


def connect() -> None:
    global _connected
    if _connected:
        return
    _connected = True

    @signals.task_prerun.connect(weak=False)
    def _bind(task=None, **_):
        request_id_var.set(task_request_id(task.request) if task is not None else None)

    @signals.task_postrun.connect(weak=False)
    def _unbind(**_):
        request_id_var.set(None)

    @signals.task_failure.connect(weak=False)
    def _failed(sender=None, **_):
        metrics.TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()

    @signals.task_retry.connect(weak=False)
    def _retried(sender=None, **_):
        metrics.TASK_RETRIES.labels(getattr(sender, "name", "unknown")).inc()

    @signals.worker_ready.connect(weak=False)
    def _serve(**_):
        # The worker's main process serves the machine's counters, its pool children's too.
        settings = process_settings()
        if settings.worker_metrics_port:
            metrics.serve_worker_metrics(settings.worker_metrics_port, settings.worker_metrics_addr)
            log.info("worker metrics on port %s", settings.worker_metrics_port)

    @signals.worker_process_shutdown.connect(weak=False)
    def _child_gone(pid=None, **_):
        if metrics.multiprocess_dir():
            from prometheus_client import multiprocess
            multiprocess.mark_process_dead(pid or os.getpid())
