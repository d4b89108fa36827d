"""Reason codes (评价指标 / 差评原因): a versioned table, one version active (SPEC §7)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.types import UTCDateTime, utcnow
from models.base import db

# offline: a hall's service (服务效率, 服务水平, 服务态度); online: a website or app's.
REASON_SCOPES = ("offline", "online")


class ReasonVersion(db.Model):
    """One imported table of reasons. The newest is active; older ones stay, so a code on an
    old rating keeps its label. With none imported, the table shipped in the repo is active."""

    __tablename__ = "reason_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str | None] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reason(db.Model):
    """A reason option, offered for the levels it lists (``levels``: digits, e.g. ``12``)."""

    __tablename__ = "reasons"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("reason_versions.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(100))
    dimension: Mapped[str] = mapped_column(String(50))
    scope: Mapped[str] = mapped_column(String(8))
    levels: Mapped[str] = mapped_column(String(5))

    __table_args__ = (UniqueConstraint("version_id", "code", name="uq_reasons_version_id_code"),)
