"""Invitations to rate (SPEC §7): one per application and rated stage."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
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

    project: Mapped[Project] = relationship()

    __table_args__ = (UniqueConstraint("project_id", "stage", name="uq_invitations_project_id_stage"),
                      {"sqlite_autoincrement": True})


class UnsettledInvitation(db.Model):
    """An invitation with no first rating yet: the default-rating sweep's queue.

    A row is added with its invitation and deleted when the first rating is made (the
    citizen's, or the sweep's default one), so the sweep reads the due ones off this
    table's primary key in its order (expiry, id). Deleting a row changes no index, where
    marking the invitation itself would write a new version of it into every index of
    ``invitations`` (its token's hash among them, a random page each).
    """

    __tablename__ = "invitations_unsettled"
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(BigId, ForeignKey("invitations.id"), primary_key=True)
    project_id: Mapped[int] = mapped_column(BigId)
