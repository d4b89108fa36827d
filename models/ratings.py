"""Ratings as received from devices: one row per ``client_id``, never updated but for ``excluded_at``."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, SmallInteger, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.org import Department, Device, ServiceItem
from models.types import BigId, UTCDateTime, utcnow
from models.base import db

LEVEL_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


def is_bad(level: int) -> bool:
    """差评 = levels 1–2 (不满意, 非常不满意)."""
    return level <= 2


class Rating(db.Model):
    """One 好差评 rating. Channel, window and department come from the device and item.

    Rater name and phone are Fernet tokens (``*_enc``) beside a masked copy for display;
    ``body_hash`` is a keyed hash of the submitted body, used to tell a replay (same body)
    from a conflict (same ``client_id``, different body).
    """

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(36), unique=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("service_items.id"))
    channel: Mapped[str] = mapped_column(String(32))
    window: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(SmallInteger)
    negative: Mapped[bool] = mapped_column(Boolean)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # rated_at's local (Asia/Shanghai) date: the figures select periods by it.
    rated_date: Mapped[date] = mapped_column(Date)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    project_no: Mapped[str | None] = mapped_column(String(64))
    staff_no: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list | None] = mapped_column(JSON)
    # Reason codes (models/reasons.py) checked against the active table for the level.
    reasons: Mapped[list | None] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)
    real_name: Mapped[bool] = mapped_column(Boolean, default=False)
    rater_name_enc: Mapped[str | None] = mapped_column(Text)
    rater_phone_enc: Mapped[str | None] = mapped_column(Text)
    rater_name_masked: Mapped[str | None] = mapped_column(String(64))
    rater_phone_masked: Mapped[str | None] = mapped_column(String(32))
    # service.privacy.blind_index() of the phone: case search finds a rater's full number
    # by equality on this keyed hash, never by decrypting rows.
    rater_phone_index: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # 一事一评 (SPEC §7): the invitation a rating was made through; 1 for a first rating,
    # 2 for the one follow-up (追评, ``followup_of`` the first); default ratings (默认评价).
    invitation_id: Mapped[int | None] = mapped_column(BigId)
    assess_number: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    followup_of: Mapped[int | None] = mapped_column(BigId)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set when a supervisor confirms a suspicious flag holding this (good) rating: it then
    # counts in no figure; cleared by a restore (service/suspicious/decisions.py).
    excluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    device: Mapped[Device] = relationship()
    department: Mapped[Department] = relationship()
    item: Mapped[ServiceItem | None] = relationship()

    __table_args__ = (
        Index("ix_ratings_rated_date_department", "rated_date", "department_id"),
        # The sweep looks for bad ratings without a case; only ~3 % of rows are bad.
        Index("ix_ratings_negative_id", "id", postgresql_where=text("negative"),
              sqlite_where=text("negative")),
        # Case search by 办件编号 and by the rater's phone (exact); most rows have neither.
        Index("ix_ratings_project_no", "project_no", postgresql_where=text("project_no IS NOT NULL"),
              sqlite_where=text("project_no IS NOT NULL")),
        Index("ix_ratings_rater_phone_index", "rater_phone_index",
              postgresql_where=text("rater_phone_index IS NOT NULL"),
              sqlite_where=text("rater_phone_index IS NOT NULL")),
        # The summary's ``default`` count.
        Index("ix_ratings_is_default_rated_date", "rated_date", postgresql_where=text("is_default"),
              sqlite_where=text("is_default")),
        # One first rating and one 追评 per invitation, whoever makes it (the citizen's page or
        # the default sweep): ON CONFLICT DO NOTHING skips the second (migration 0022).
        Index("ux_ratings_invitation_assess", "invitation_id", "assess_number", unique=True,
              postgresql_where=text("invitation_id IS NOT NULL"), sqlite_where=text("invitation_id IS NOT NULL")),
        # The summary's ``excluded`` count; excluded ratings are few.
        Index("ix_ratings_excluded_rated_date", "rated_date", postgresql_where=text("excluded_at IS NOT NULL"),
              sqlite_where=text("excluded_at IS NOT NULL")),
        {"sqlite_autoincrement": True},  # ids never reused (see Case)
    )
