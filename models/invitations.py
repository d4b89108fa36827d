"""Invitations to rate (SPEC §7): one per application and rated stage."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import db
from models.projects import Project
from models.types import BigId, UTCDateTime, utcnow

INVITATION_STATES = ("pending", "rated", "defaulted", "expired")


class Invitation(db.Model):
    """The link an applicant gets by SMS or on the receipt's QR code.

    The token in the link is derived from ``nonce`` with a key of the server's secret
    (service/invitations/tokens.py), so the database alone cannot rebuild a link; only its
    SHA-256 (``token_hash``) is kept to find the invitation when the link is opened.
    Ratings made through it carry its id (``ratings.invitation_id``).
    """

    __tablename__ = "invitations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(BigId, ForeignKey("projects.id"))
    stage: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    stage_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the 办件评价率 scan
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set once a first rating exists (the citizen's, or the default one): the default-rating
    # sweep then never looks at the invitation again.
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    project: Mapped[Project] = relationship()

    __table_args__ = (UniqueConstraint("project_id", "stage", name="uq_invitations_project_id_stage"),
                      # The sweep's scan: unsettled invitations in its order (expiry, id).
                      Index("ix_invitations_unsettled", "expires_at", "id", postgresql_where=text("settled_at IS NULL"),
                            sqlite_where=text("settled_at IS NULL")),
                      {"sqlite_autoincrement": True})
