"""Device health: when each device was last seen, and which have gone silent.

A kiosk that stops posting removes ratings from the figures without anyone noticing, so
an active device silent for more than HCP_DEVICE_SILENT_HOURS *working* hours is flagged
on the console, by ``hcp devices list`` and in the morning digest. Working hours are
HCP_WORKING_HOURS on the working days of the deadlines' calendar (holidays and 调休
included, service.cases.deadlines.WorkCalendar): a hall closed over the weekend or the
National Day holiday is not silent.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, joinedload

from models import Device, Rating, User
from models.clock import SHANGHAI, local_date
from models.types import utcnow
from service import notify
from service.cases.deadlines import WorkCalendar

log = logging.getLogger(__name__)

# Rated through public pages (the hall QR page, hcp's own default ratings), not by a
# device that posts with its key: their silence says nothing about a machine.
UNWATCHED_CHANNELS = ("qrcode", "default")
# A device's last_seen_at is written at most this often per web process.
TOUCH_EVERY = timedelta(seconds=60)
_D = Device.__table__.c


def touch(device_id: int, key_hash: str) -> None:
    """Record that the device's key was just accepted (at most once a TOUCH_EVERY per
    process and key); a failure to write is logged and never fails the request."""
    cache = current_app.extensions.setdefault("hcp_device_seen", {})
    now = utcnow()
    last = cache.get(key_hash)
    # abs(): the application's clock may be set back in tests.
    if last is not None and abs(now - last) < TOUCH_EVERY:
        return
    from service.pooling import intake_engine

    try:
        with intake_engine().begin() as conn:
            conn.execute(update(Device.__table__).where(_D.id == device_id).values(last_seen_at=now))
    except SQLAlchemyError as err:
        log.warning("last_seen_at of device %s not written: %s", device_id, err)
        return
    cache[key_hash] = now


def working_ranges(text: str) -> list[tuple[time, time]]:
    """``09:00-12:00,13:30-17:30`` as a list of (start, end) times."""
    ranges = []
    for part in text.split(","):
        start, _, end = part.strip().partition("-")
        a, b = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
        if b <= a:
            raise ValueError(f"working hours {part!r}: the end must be after the start")
        ranges.append((a, b))
    return ranges


def working_hours_between(calendar: WorkCalendar, ranges: list[tuple[time, time]], since: datetime,
                          until: datetime, stop_after: float | None = None) -> float:
    """Working hours between two moments (Asia/Shanghai days and hours); counting stops
    once ``stop_after`` is passed, so a device dead for a year costs a day's loop."""
    if until <= since:
        return 0.0
    total = 0.0
    day = local_date(until)
    first = local_date(since)
    while day >= first:
        if calendar.is_workday(day):
            for a, b in ranges:
                start = max(datetime.combine(day, a, SHANGHAI), since)
                end = min(datetime.combine(day, b, SHANGHAI), until)
                if end > start:
                    total += (end - start).total_seconds() / 3600
        if stop_after is not None and total > stop_after:
            break
        day -= timedelta(days=1)
    return total


@dataclass
class Health:
    """How one device is doing: its last request, and whether it is silent."""

    device: Device
    ratings_today: int
    silent_hours: float | None  # working hours since last seen (None: not watched)
    silent: bool


def check(session: Session, devices: list[Device], now: datetime | None = None) -> list[Health]:
    """The health of ``devices`` at ``now``: ratings today and the silent flag."""
    settings = current_app.config["HCP_SETTINGS"]
    now = now or utcnow()
    calendar = WorkCalendar.load(session)
    ranges = working_ranges(settings.working_hours)
    limit = settings.device_silent_hours
    today = local_date(now)
    ids = [d.id for d in devices]
    counts = dict(session.execute(
        select(Rating.device_id, func.count()).where(Rating.rated_date == today, Rating.device_id.in_(ids))
        .group_by(Rating.device_id)).all()) if ids else {}
    out = []
    for d in devices:
        hours = None
        if d.active and d.channel not in UNWATCHED_CHANNELS:
            hours = working_hours_between(calendar, ranges, d.last_seen_at or d.created_at, now,
                                          stop_after=limit)
        out.append(Health(d, counts.get(d.id, 0), hours, hours is not None and hours > limit))
    return out


def silent_devices(session: Session, now: datetime | None = None) -> list[Health]:
    """Every active, watched device that is silent now."""
    devices = list(session.scalars(
        select(Device).where(Device.active.is_(True), Device.channel.not_in(UNWATCHED_CHANNELS))
        .options(joinedload(Device.department)).order_by(Device.id)))
    return [h for h in check(session, devices, now) if h.silent]


def issue_silent_notice(session: Session, today: date) -> list[int]:
    """The morning's 设备静默 notice: one per day (key ``silent:2026-12-03``), by e-mail to
    the active admins and as a group post to each silent device's department; the
    deliveries' ids to send. The caller commits."""
    silent = silent_devices(session)
    if not silent:
        return []
    key = f"silent:{today.isoformat()}"
    if notify.claim(session, key, "silent", {"devices": [h.device.id for h in silent]}, sent=utcnow()) is None:
        return []
    lines = [f"{notify.PREFIX}设备静默提醒（{today}）：{len(silent)} 台设备超过"
             f"{current_app.config['HCP_SETTINGS'].device_silent_hours:g}个工作小时没有上报"]
    for i, h in enumerate(silent, 1):
        d = h.device
        seen = d.last_seen_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if d.last_seen_at else "从未上报"
        lines.append(f"{i}. {d.name}（{d.department.name}{'，' + d.window + '号窗口' if d.window else ''}），"
                     f"最后上报 {seen}")
    admins = session.scalars(select(User).where(User.active.is_(True), User.role == "admin"))
    return notify.deliveries(session, key, subject=f"{notify.PREFIX}设备静默提醒：{len(silent)} 台",
                             text="\n".join(lines), users=list(admins),
                             departments=[h.device.department for h in silent], department_mail=False)
