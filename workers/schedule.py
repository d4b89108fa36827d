"""The beat schedule: periodic sweeps that keep every bad rating moving."""
from celery.schedules import crontab

from config import Settings


def beat_schedule(settings: Settings) -> dict:
    return {
        "sweep-unrouted": {
            "task": "workers.tasks.sweep_unrouted",
            "schedule": settings.sweep_seconds,
        },
        # Term counts and suspicious rules of ratings whose tasks never ran (broker down).
        "catch-up-ratings": {
            "task": "workers.tasks.catch_up_ratings",
            "schedule": settings.catch_up_seconds,
        },
        "sweep-warnings": {
            "task": "workers.tasks.sweep_warnings",
            "schedule": settings.warning_seconds,
        },
        # Daily in the Celery timezone (Asia/Shanghai); the task itself skips days off,
        # since crontab knows Mon–Fri but not holidays and make-up workdays (调休).
        "morning-digest": {
            "task": "workers.tasks.morning_digest",
            "schedule": crontab(hour=int(settings.digest_at.split(":")[0]),
                                minute=int(settings.digest_at.split(":")[1])),
        },
        "default-ratings": {
            "task": "workers.tasks.make_default_ratings",
            "schedule": settings.default_sweep_seconds,
        },
        # 上报: also what gets the outbox moving again after a broker or platform outage.
        "exchange-push": {
            "task": "workers.tasks.push_exchange",
            "schedule": settings.exchange_sweep_seconds,
        },
        "check-satisfaction-floor": {
            "task": "workers.tasks.check_satisfaction_floor",
            "schedule": settings.floor_check_seconds,
        },
    }
