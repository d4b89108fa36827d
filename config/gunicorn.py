"""gunicorn settings for hcp's web process; each may be overridden by an HCP_* variable."""
import multiprocessing
import os

bind = os.environ.get("HCP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("HCP_WEB_WORKERS", str(min(4, multiprocessing.cpu_count() * 2))))
threads = int(os.environ.get("HCP_WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("HCP_ACCESS_LOG", "-")
# Workers are recycled now and then, so a slow leak can never grow without bound.
max_requests = 20000
max_requests_jitter = 2000
# gunicorn's control socket is one fixed path per user; several hcp instances on one
# machine (or a test run beside a service) would fight over it, and hcp does not use it.
control_socket_disable = True
