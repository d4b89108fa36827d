"""The beat schedule: periodic sweeps that keep every bad rating moving."""
from config import Settings


def beat_schedule(settings: Settings) -> dict:
    return {
        "sweep-unrouted": {
            "task": "workers.tasks.sweep_unrouted",
            "schedule": settings.sweep_seconds,
        },
        "check-satisfaction-floor": {
            "task": "workers.tasks.check_satisfaction_floor",
            "schedule": settings.floor_check_seconds,
        },
    }
