"""The application register (办件, SPEC §7): one row per ``project_no``."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import db
from models.clients import IntegrationClient
from models.org import Department, ServiceItem
from models.types import BigId, UTCDateTime, utcnow

# A stage only moves forward: 受理 (accepted) → 办结 (done).
STAGES = ("accepted", "done")
STAGE_LABELS = {"accepted": "受理", "done": "办结"}
APPLICANT_KINDS = ("person", "legal")


class Project(db.Model):
    """An application as the approval system registered it.

    The applicant is rater data: name and phone are Fernet tokens beside masked copies,
    and the phone's keyed blind index (service.privacy.blind_index) finds it exactly
    without decrypting rows.
    """

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_no: Mapped[str] = mapped_column(String(64), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("integration_clients.id"))
    stage: Mapped[str] = mapped_column(String(16))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staff_no: Mapped[str | None] = mapped_column(String(64))
    applicant_kind: Mapped[str] = mapped_column(String(8))
    applicant_name_enc: Mapped[str | None] = mapped_column(Text)
    applicant_phone_enc: Mapped[str | None] = mapped_column(Text)
    applicant_name_masked: Mapped[str | None] = mapped_column(String(64))
    applicant_phone_masked: Mapped[str | None] = mapped_column(String(32))
    applicant_phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    item: Mapped[ServiceItem] = relationship()
    department: Mapped[Department] = relationship()
    client: Mapped[IntegrationClient | None] = relationship()

    __table_args__ = ({"sqlite_autoincrement": True},)

    @property
    def stage_rank(self) -> int:
        return STAGES.index(self.stage)


