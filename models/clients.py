"""Integration clients: the systems that talk to hcp without rating (SPEC §7)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.org import Department
from models.types import UTCDateTime, utcnow
from models.base import db

# approval 审批系统 (registers applications), upstream the provincial platform, hotline 12345.
CLIENT_KINDS = ("approval", "upstream", "hotline")


class IntegrationClient(db.Model):
    """A system with a key of its own (``hcpc_…``, kept only as a SHA-256 hash).

    A separate table from devices: a client key never posts ratings as a device, and a
    device key never registers applications.
    """

    __tablename__ = "integration_clients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Where results for this client's records are pushed back (SPEC §8); none: HCP_EXCHANGE_URL.
    callback_url: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    department: Mapped[Department] = relationship()
