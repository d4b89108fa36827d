"""The 操作日志: one row per change made through the admin console (who, when, what, before/after)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import db
from models.types import BigId, UTCDateTime, utcnow


class AuditEntry(db.Model):
    """A recorded change; never updated or deleted. ``actor`` is a username and nothing
    else of the person; ``before``/``after`` hold the changed fields, never secrets or keys."""

    __tablename__ = "audit_log"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(48), index=True)
    target: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
