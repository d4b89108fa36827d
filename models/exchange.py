"""The exchange outbox (SPEC §8): one row per record owed to the upstream platform or a source.

A rating's row is written in the statement (PostgreSQL) or transaction (SQLite) that
stores the rating, a closed case's in the transaction of the closing action, so a
rollback leaves neither. ``record_id`` is the stable id the receiver deduplicates by.
The push (service/exchange/push.py) moves a row from ``pending`` to ``sent``,
``rejected`` (the receiver refused it, with its reason) or ``held`` (the profile has no
code for one of its values); only an admin's requeue makes the last two pending again.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import db
from models.types import BigId, UTCDateTime, utcnow

OUTBOX_STATES = ("pending", "sent", "rejected", "held")
OUTBOX_STATE_LABELS = {"pending": "待上报", "sent": "已上报", "rejected": "被拒收", "held": "暂缓（缺代码）"}
OUTBOX_KINDS = ("rating", "case")


RATING_RECORD_PREFIX = "rating-"  # the intake's SQL builds the same id from the rating's


def rating_record_id(rating_id: int) -> str:
    """The record id of a rating's 上报 record: stable, so a resend is dropped by the receiver."""
    return f"{RATING_RECORD_PREFIX}{rating_id}"


class OutboxRecord(db.Model):
    """A record owed upstream (``client_id`` None) or to the integration client a rating came from."""

    __tablename__ = "exchange_outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    rating_id: Mapped[int] = mapped_column(BigId)
    case_id: Mapped[int | None] = mapped_column(BigId)
    # The integration client the result goes back to (its --callback-url, else HCP_EXCHANGE_URL).
    client_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a pending record may next be sent: later after each failed push (backoff).
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(500))
    # A closed case's result as it was at closing (a reopened case closes again as a new record).
    payload: Mapped[dict | None] = mapped_column(JSON)
    # The record's JSON text ({id, type, data}) in HCP_EXCHANGE_PROFILE as its writer coded
    # it, and what for (service/exchange/pgcode.py: the coding's key and epoch); a record
    # whose coded_for is not the current one is coded again when claimed. None: coded then.
    coded: Mapped[str | None] = mapped_column(Text)
    coded_for: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        # The push takes the due pending records in id order; sent ones leave the index.
        Index("ix_exchange_outbox_pending", "due_at", "id", postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
        # The refused ones, for the admin's list; a record enters it only when refused.
        Index("ix_exchange_outbox_refused", "status", postgresql_where=text("status IN ('rejected', 'held')"),
              sqlite_where=text("status IN ('rejected', 'held')")),
        {"sqlite_autoincrement": True},
    )


class InboundSource(db.Model):
    """Where an inbound rating came from: the client and the source's own record id (or ticket).

    Written with the rating; a case of that rating sends its result back to this client.
    """

    __tablename__ = "exchange_sources"
    rating_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    client_id: Mapped[int] = mapped_column(Integer)
    source_id: Mapped[str] = mapped_column(String(64))
