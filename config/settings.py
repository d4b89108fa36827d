"""Settings read from the environment (SPEC §5), with embedded defaults under ``var/``.

The same code runs on one laptop (SQLite + a broker in a SQLite file) and on
PostgreSQL + Redis with many machines; only these variables differ.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessSettings:
    """What a process reads before (or without) the app: gunicorn, logging, worker metrics.

    Read without side effects (no files made, no secrets), so gunicorn's master and a
    worker's entry module can use them before ``create_app``.
    """
    var_dir: Path
    bind: str
    web_workers: int
    web_threads: int
    web_worker_class: str
    web_backlog: int
    web_max_requests: int  # 0: a gunicorn worker is never replaced
    access_log: str | None  # "-" for stderr, "" for none
    log_format: str  # json | text
    log_level: str
    db_pool_size: int
    db_max_overflow: int
    db_ping_idle_seconds: float
    worker_metrics_port: int | None
    worker_metrics_addr: str


def process_settings(env: dict | None = None) -> ProcessSettings:
    """The process-level HCP_* variables of ``env`` (default: the environment)."""
    env = os.environ if env is None else env
    port = env.get("HCP_WORKER_METRICS_PORT")
    return ProcessSettings(
        var_dir=Path(env.get("HCP_VAR_DIR", "var")).resolve(),
        bind=env.get("HCP_BIND", "127.0.0.1:8000"),
        web_workers=int(env.get("HCP_WEB_WORKERS") or max(2, os.cpu_count() or 1)),
        web_threads=int(env.get("HCP_WEB_THREADS", "8")),
        web_worker_class=env.get("HCP_WEB_WORKER_CLASS", "gthread"),
        web_backlog=int(env.get("HCP_WEB_BACKLOG", "2048")),
        web_max_requests=int(env.get("HCP_WEB_MAX_REQUESTS", "20000")),
        access_log=env.get("HCP_ACCESS_LOG", "-") or None,
        log_format=env.get("HCP_LOG_FORMAT", "json").lower(),
        log_level=env.get("HCP_LOG_LEVEL", "INFO"),
        db_pool_size=int(env.get("HCP_DB_POOL_SIZE", "10")),
        db_max_overflow=int(env.get("HCP_DB_MAX_OVERFLOW", "10")),
        db_ping_idle_seconds=float(env.get("HCP_DB_PING_IDLE_SECONDS", "2")),
        worker_metrics_port=int(port) if port else None,
        worker_metrics_addr=env.get("HCP_WORKER_METRICS_ADDR", "0.0.0.0"),
    )


def database_url(raw: str) -> str:
    """Accept a plain ``postgresql://`` URL as given and use the psycopg 3 driver for it."""
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix):]
    return raw


def _local_secret(var: Path, name: str, make) -> str:
    """A secret kept in a 0600 file under var/ — only for the embedded one-machine default.

    Production sets the HCP_* variable; a laptop gets a key made once and kept, so
    encrypted rater data stays readable across restarts.
    """
    path = var / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
        log.warning("generated %s; set the matching HCP_* variable in production", path)
    return path.read_text().strip()


# Debian's fonts-wqy-microhei (.ci/run and the Dockerfile install it).
DEFAULT_REPORT_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


@dataclass
class Settings:
    database_url: str
    broker_url: str
    redis_url: str | None
    device_rate_limit: str
    device_cache_seconds: float
    secret_key: str
    data_keys: list[str]
    bind: str
    var_dir: Path
    callback_working_days: int = 1
    close_working_days: int = 15
    # The closure deadline turns yellow this many working days before it (SPEC §9).
    yellow_close_days: int = 3
    token_hours: int = 8
    sweep_seconds: float = 60.0
    sweep_grace_seconds: float = 30.0
    # The catch-up sweep (service/ratings/after_commit.py): how often beat runs it, and how
    # old a stored rating must be before it does its term count and rule check itself.
    catch_up_seconds: float = 60.0
    catch_up_grace_seconds: float = 120.0
    # A web process gathers its stored ratings this long and sends them to the worker's term
    # counts and rules as one task, and its new invitations' SMS as one batch send
    # (service/pending.py); 0: at once, per request.
    after_commit_linger_seconds: float = 0.2
    timezone: str = "Asia/Shanghai"
    # Names this deployment's Celery queue and rate-limit keys, so two hcp instances
    # (or two test runs) can share one Redis without seeing each other's messages.
    instance: str = "hcp"
    # Red/yellow cards and their notifications (docs/notifications.md).
    warning_seconds: float = 300.0
    digest_at: str = "08:30"
    notify_timeout: float = 10.0
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "hcp@localhost"
    smtp_security: str = "none"  # none | starttls | ssl
    # The monthly good-rate floor per department (12345 hotline practice: 96 %), checked by beat.
    satisfaction_floor: float = 0.96
    satisfaction_min_ratings: int = 20
    floor_check_seconds: float = 3600.0
    # The TrueType font the report's PDF embeds and its charts are drawn with (SPEC §10).
    report_font: str = DEFAULT_REPORT_FONT
    db_pool_size: int = 10
    db_max_overflow: int = 10
    # 一事一评 (SPEC §7, docs/applications.md): the citizen's link, which stages are rated,
    # the SMS gateway, and the windows for rating, following up and defaulting.
    public_url: str = "http://127.0.0.1:8000"
    rated_stages: tuple = ("done",)
    sms_url: str | None = None
    default_rating_days: int = 7
    default_rating_level: int = 5
    default_sweep_seconds: float = 300.0
    followup_days: int = 15
    # A hall QR (/q/{code}): one phone rates one window at most once in this many minutes.
    qr_min_minutes: int = 10
    deadline_unit: str = "working"  # or natural: both case deadlines count every day
    # Larger request bodies are 413 before anything parses them; a batch of 500 fits.
    max_body_bytes: int = 2 * 1024 * 1024
    # Proxies in front of hcp that append to X-Forwarded-For: the client address (sign-in
    # throttling is per user and address) is read that many hops back. 0: the peer address.
    proxy_hops: int = 0
    # Device health (docs/admin.md): an active device silent for more than this many
    # working hours is flagged; working hours are these ranges on the calendar's working days.
    device_silent_hours: float = 2.0
    working_hours: str = "09:00-12:00,13:30-17:30"
    # 上报 (SPEC §8, docs/exchange.md): the upstream platform, the profile its records are
    # coded in, the district's 行政区划 code, and how the push batches, waits and retries.
    exchange_url: str | None = None
    exchange_token: str | None = None
    exchange_profile: str = "gbt39046"
    area_code: str | None = None
    exchange_outbox: bool = True
    exchange_batch: int = 100
    # Batches one push has in flight at once on PostgreSQL (two claimers sharing the backlog by
    # SKIP LOCKED, each claiming its half in one statement and POSTing it at once); SQLite: one.
    exchange_senders: int = 4
    exchange_timeout: float = 10.0
    exchange_sweep_seconds: float = 60.0
    exchange_backoff_seconds: float = 5.0
    exchange_backoff_max_seconds: float = 900.0
    # Suspicious ratings (SPEC §10, docs/insights.md): the rules run per stored batch in the
    # worker; a group over its threshold opens a flag for a supervisor.
    suspicious_rules: bool = True
    # Hot spots (docs/insights.md): off sends no count_terms task per stored batch; the
    # catch-up sweep then counts the terms, minutes late, in bulk.
    term_counting: bool = True
    burst_ratings: int = 10  # more than this many ratings from one device …
    burst_seconds: int = 60  # … within this many seconds
    phone_daily_max: int = 5  # more ratings than this from one rater phone in a day
    same_comment_daily_max: int = 5  # more than this many identical comments in a day
    same_comment_min_chars: int = 6  # shorter comments (好, 很满意) are alike by nature
    extra: dict = field(default_factory=dict)

    def flask_config(self) -> dict:
        """The Flask config mapping built from these settings."""
        # hide_parameters: a database error is logged with its SQL but not its values, so
        # an outage never writes rating comments or rater fields into the logs.
        engine_options = {"pool_pre_ping": True, "hide_parameters": True}
        if self.database_url.startswith("postgresql"):
            engine_options.update(
                # service/pooling.py pings a connection only after it sat idle: one
                # round trip less per request under load.
                pool_pre_ping=False,
                # At least one kept connection per gunicorn thread: connections beyond
                # pool_size are closed when returned, and make bench saw a tenth of the
                # intake's CPU go to opening and closing them again.
                pool_size=self.db_pool_size,
                max_overflow=self.db_max_overflow,
                pool_timeout=5,
                connect_args={"connect_timeout": 3},
            )
        else:
            engine_options["connect_args"] = {"timeout": 30}
        return {
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
            "HCP_SETTINGS": self,
            "API_TITLE": "hcp 好差评 API",
            "API_VERSION": "v1",
            "OPENAPI_VERSION": "3.0.3",
            "OPENAPI_URL_PREFIX": "/api",
            "OPENAPI_JSON_PATH": "v1/openapi.json",
            "OPENAPI_SWAGGER_UI_PATH": "docs",
            "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
            # The two bearer schemes (service/auth/access.py marks each operation with one).
            "API_SPEC_OPTIONS": {"components": {"securitySchemes": {
                "deviceKey": {"type": "http", "scheme": "bearer", "description": "a device key, hcpd_…"},
                "staffToken": {"type": "http", "scheme": "bearer",
                               "description": "a staff token, hcpt_… (POST /api/v1/auth/token)"},
                "clientKey": {"type": "http", "scheme": "bearer",
                              "description": "an integration client key, hcpc_… (hcp clients add)"},
            }}},
            "JSON_AS_ASCII": False,
            "MAX_CONTENT_LENGTH": self.max_body_bytes,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            # The signature's own limit; the session's row (service/web/auth.py) expires too.
            "PERMANENT_SESSION_LIFETIME": timedelta(hours=self.token_hours),
            "CELERY": self.celery_config(),
        }

    def celery_config(self) -> dict:
        """Celery settings: late acks and prefetch 1 so a killed worker loses no task."""
        transport_options = {}
        if self.broker_url.startswith("sqla+sqlite:"):
            # The embedded broker: web, worker and beat write one SQLite file; wait for
            # its lock rather than fail a publish after pysqlite's default 5 s.
            transport_options = {"connect_args": {"timeout": 30}}
        if self.broker_url.startswith(("redis://", "rediss://")):
            # Fail fast when Redis is down: a publish from the intake gives up after one
            # short retry (the sweep resends), rather than holding the request for seconds.
            transport_options = {"socket_connect_timeout": 2, "socket_timeout": 5, "max_retries": 1,
                                 "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
        return {
            "broker_url": self.broker_url,
            "broker_transport_options": transport_options,
            "broker_connection_retry_on_startup": True,
            "task_ignore_result": True,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "task_default_queue": self.instance,
            "timezone": self.timezone,
            "enable_utc": True,
            "worker_hijack_root_logger": False,
        }


def load_settings(overrides: dict | None = None) -> Settings:
    """Read the HCP_* environment (with ``overrides`` on top, as in tests)."""
    env = dict(os.environ)
    env.update(overrides or {})
    proc = process_settings(env)
    var = proc.var_dir
    var.mkdir(parents=True, exist_ok=True)
    secret = env.get("HCP_SECRET_KEY") or _local_secret(var, "secret_key", lambda: secrets.token_urlsafe(48))
    data = env.get("HCP_DATA_KEY") or _local_secret(var, "data_key", lambda: Fernet.generate_key().decode())
    return Settings(
        database_url=database_url(env.get("HCP_DATABASE_URL") or f"sqlite:///{var / 'hcp.sqlite'}"),
        broker_url=env.get("HCP_BROKER_URL") or f"sqla+sqlite:///{var / 'broker.sqlite'}",
        redis_url=env.get("HCP_REDIS_URL") or None,
        device_rate_limit=env.get("HCP_DEVICE_RATE_LIMIT", "600/minute"),
        device_cache_seconds=float(env.get("HCP_DEVICE_CACHE_SECONDS", "10")),
        secret_key=secret,
        # Several comma-separated keys allow rotation: the first encrypts, all decrypt.
        data_keys=[k.strip() for k in data.split(",") if k.strip()],
        bind=proc.bind,
        var_dir=var,
        callback_working_days=int(env.get("HCP_CALLBACK_WORKING_DAYS", "1")),
        close_working_days=int(env.get("HCP_CLOSE_WORKING_DAYS", "15")),
        yellow_close_days=int(env.get("HCP_YELLOW_CLOSE_DAYS", "3")),
        token_hours=int(env.get("HCP_TOKEN_HOURS", "8")),
        sweep_seconds=float(env.get("HCP_SWEEP_SECONDS", "60")),
        sweep_grace_seconds=float(env.get("HCP_SWEEP_GRACE_SECONDS", "30")),
        catch_up_seconds=float(env.get("HCP_CATCH_UP_SECONDS", "60")),
        catch_up_grace_seconds=float(env.get("HCP_CATCH_UP_GRACE_SECONDS", "120")),
        after_commit_linger_seconds=float(env.get("HCP_AFTER_COMMIT_LINGER_SECONDS", "0.2")),
        instance=env.get("HCP_INSTANCE", "hcp"),
        warning_seconds=float(env.get("HCP_WARNING_SECONDS", "300")),
        digest_at=env.get("HCP_DIGEST_AT", "08:30"),
        notify_timeout=float(env.get("HCP_NOTIFY_TIMEOUT", "10")),
        **_smtp_settings(env),
        satisfaction_floor=float(env.get("HCP_SATISFACTION_FLOOR", "0.96")),
        satisfaction_min_ratings=int(env.get("HCP_SATISFACTION_MIN_RATINGS", "20")),
        floor_check_seconds=float(env.get("HCP_FLOOR_CHECK_SECONDS", "3600")),
        report_font=env.get("HCP_REPORT_FONT", DEFAULT_REPORT_FONT),
        db_pool_size=proc.db_pool_size,
        db_max_overflow=proc.db_max_overflow,
        public_url=(env.get("HCP_PUBLIC_URL") or f"http://{proc.bind}").rstrip("/"),
        rated_stages=tuple(s.strip() for s in env.get("HCP_RATED_STAGES", "done").split(",") if s.strip()),
        sms_url=env.get("HCP_SMS_URL") or None,
        default_rating_days=int(env.get("HCP_DEFAULT_RATING_DAYS", "7")),
        default_rating_level=_level(env.get("HCP_DEFAULT_RATING_LEVEL", "5")),
        default_sweep_seconds=float(env.get("HCP_DEFAULT_SWEEP_SECONDS", "300")),
        followup_days=int(env.get("HCP_FOLLOWUP_DAYS", "15")),
        qr_min_minutes=_positive("HCP_QR_MIN_MINUTES", env.get("HCP_QR_MIN_MINUTES", "10"), 7 * 24 * 60),
        deadline_unit=_choice("HCP_DEADLINE_UNIT", env.get("HCP_DEADLINE_UNIT", "working"), ("working", "natural")),
        max_body_bytes=int(env.get("HCP_MAX_BODY_BYTES", str(2 * 1024 * 1024))),
        proxy_hops=int(env.get("HCP_PROXY_HOPS", "0")),
        device_silent_hours=float(env.get("HCP_DEVICE_SILENT_HOURS", "2")),
        working_hours=_working_hours(env.get("HCP_WORKING_HOURS", "09:00-12:00,13:30-17:30")),
        exchange_url=env.get("HCP_EXCHANGE_URL") or None,
        exchange_token=env.get("HCP_EXCHANGE_TOKEN") or None,
        exchange_profile=env.get("HCP_EXCHANGE_PROFILE") or "gbt39046",
        area_code=env.get("HCP_AREA_CODE") or None,
        exchange_outbox=_flag("HCP_EXCHANGE_OUTBOX", env.get("HCP_EXCHANGE_OUTBOX", "on")),
        exchange_batch=_positive("HCP_EXCHANGE_BATCH", env.get("HCP_EXCHANGE_BATCH", "100"), 1000),
        exchange_senders=_positive("HCP_EXCHANGE_SENDERS", env.get("HCP_EXCHANGE_SENDERS", "4"), 16),
        exchange_timeout=float(env.get("HCP_EXCHANGE_TIMEOUT", "10")),
        exchange_sweep_seconds=float(env.get("HCP_EXCHANGE_SWEEP_SECONDS", "60")),
        exchange_backoff_seconds=float(env.get("HCP_EXCHANGE_BACKOFF_SECONDS", "5")),
        exchange_backoff_max_seconds=float(env.get("HCP_EXCHANGE_BACKOFF_MAX_SECONDS", "900")),
        suspicious_rules=_flag("HCP_SUSPICIOUS_RULES", env.get("HCP_SUSPICIOUS_RULES", "on")),
        term_counting=_flag("HCP_TERM_COUNTING", env.get("HCP_TERM_COUNTING", "on")),
        burst_ratings=_positive("HCP_BURST_RATINGS", env.get("HCP_BURST_RATINGS", "10"), 100000),
        burst_seconds=_positive("HCP_BURST_SECONDS", env.get("HCP_BURST_SECONDS", "60"), 86400),
        phone_daily_max=_positive("HCP_PHONE_DAILY_MAX", env.get("HCP_PHONE_DAILY_MAX", "5"), 100000),
        same_comment_daily_max=_positive("HCP_SAME_COMMENT_DAILY_MAX", env.get("HCP_SAME_COMMENT_DAILY_MAX", "5"),
                                         100000),
        same_comment_min_chars=_positive("HCP_SAME_COMMENT_MIN_CHARS", env.get("HCP_SAME_COMMENT_MIN_CHARS", "6"),
                                         500),
    )


def _working_hours(raw: str) -> str:
    """``HH:MM-HH:MM`` ranges, comma separated, each ending after it starts."""
    for part in raw.split(","):
        m = re.fullmatch(r"\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-3]):([0-5]\d)\s*", part)
        if not m or (int(m[3]), int(m[4])) <= (int(m[1]), int(m[2])):
            raise ValueError("HCP_WORKING_HOURS must be ranges like 09:00-12:00,13:30-17:30")
    return raw


def _choice(name: str, value: str, allowed: tuple) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}")
    return value


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("on", "off", "1", "0", "true", "false", "yes", "no"):
        raise ValueError(f"{name} must be on or off")
    return value in ("on", "1", "true", "yes")


def _positive(name: str, raw: str, most: int) -> int:
    value = int(raw)
    if not 1 <= value <= most:
        raise ValueError(f"{name} must be 1–{most}")
    return value


def _level(raw: str) -> int:
    level = int(raw)
    if not 1 <= level <= 5:
        raise ValueError("HCP_DEFAULT_RATING_LEVEL must be 1–5 (5 非常满意)")
    return level


def _smtp_settings(env: dict) -> dict:
    """HCP_SMTP_*: no host means no e-mail is sent. Port 465 implies SSL; a login, STARTTLS."""
    port = int(env.get("HCP_SMTP_PORT") or 25)
    user = env.get("HCP_SMTP_USER") or None
    security = env.get("HCP_SMTP_SECURITY") or ("ssl" if port == 465 else "starttls" if user else "none")
    if security not in ("none", "starttls", "ssl"):
        raise ValueError("HCP_SMTP_SECURITY must be none, starttls or ssl")
    return {
        "smtp_host": env.get("HCP_SMTP_HOST") or None,
        "smtp_port": port,
        "smtp_user": user,
        "smtp_password": env.get("HCP_SMTP_PASSWORD") or None,
        "smtp_from": env.get("HCP_SMTP_FROM") or "hcp@localhost",
        "smtp_security": security,
    }
