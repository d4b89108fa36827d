"""Outbox rows as neutral records, then in a profile's shape (SPEC §8).

The neutral record is what every profile maps from (``service/exchange/profiles.py``):
a rating's values read from its row, its department's credit code, its item's code and
HCP_AREA_CODE; a case's result as the outbox row kept it at closing. One query per
batch, whatever its size (none on PostgreSQL, where the push's claim reads them too).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Department, InboundSource, OutboxRecord, Rating, ServiceItem, rating_record_id
from service.exchange.profiles import Held, Profile


RATING_FIELDS = ("id", "project_no", "channel", "level", "assess_number", "rated_at", "reasons", "comment",
                 "rater_name_masked", "real_name", "credit_code", "item_code", "source_id")


def rating_columns() -> list:
    """What a neutral record reads of its rating, labelled ``r_<field>`` (RATING_FIELDS order)."""
    cols = [Rating.id, Rating.project_no, Rating.channel, Rating.level, Rating.assess_number, Rating.rated_at,
            Rating.reasons, Rating.comment, Rating.rater_name_masked, Rating.real_name,
            Department.credit_code, ServiceItem.code, InboundSource.source_id]
    return [c.label(f"r_{name}") for c, name in zip(cols, RATING_FIELDS)]


def join_ratings(stmt, rating_id):
    """``stmt`` (selecting rating_columns()) outer-joined to the rating ``rating_id`` names and its lookups."""
    return _lookups(stmt.outerjoin(Rating, Rating.id == rating_id))


def _lookups(stmt):
    return (stmt.outerjoin(Department, Department.id == Rating.department_id)
            .outerjoin(ServiceItem, ServiceItem.id == Rating.item_id)
            .outerjoin(InboundSource, InboundSource.rating_id == Rating.id))


def rating_values(row) -> dict | None:
    """A row's rating_columns() as the dict neutral() takes (None: no rating)."""
    m = row._mapping
    if m["r_id"] is None:
        return None
    return {name: m[f"r_{name}"] for name in RATING_FIELDS}


def _ratings(session: Session, rating_ids: set[int]) -> dict[int, dict]:
    rows = session.execute(_lookups(select(*rating_columns()).select_from(Rating)).where(Rating.id.in_(rating_ids)))
    return {r.r_id: rating_values(r) for r in rows}


def neutral(session: Session, records: list[OutboxRecord], area_code: str | None,
            ratings: dict[int, dict] | None = None) -> dict[int, dict | None]:
    """The neutral record of each outbox row, by its id (None: its rating is gone); ``ratings``
    (by rating id) when the caller has read them already, else one query here."""
    if ratings is None:
        ratings = _ratings(session, {r.rating_id for r in records}) if records else {}
    out: dict[int, dict | None] = {}
    for rec in records:
        rating = ratings.get(rec.rating_id)
        if rating is None:
            out[rec.id] = None
            continue
        base = {"project_no": rating["project_no"], "item_code": rating["item_code"],
                "credit_code": rating["credit_code"], "area_code": area_code,
                # The source's own id for a rating it sent us; ours otherwise.
                "rating_record_id": rating["source_id"] or rating_record_id(rating["id"])}
        if rec.kind == "rating":
            base.update(channel=rating["channel"], level=rating["level"], level_label=rating["level"],
                        assess_number=rating["assess_number"], rated_at=rating["rated_at"],
                        reasons=rating["reasons"] or None, comment=rating["comment"],
                        rater=rating["rater_name_masked"] if rating["real_name"] else "匿名")
        else:
            payload = dict(rec.payload or {})
            base.update(outcome=payload.get("outcome"), cause=payload.get("cause"), action=payload.get("action"),
                        contacted=payload.get("contacted"), satisfied=payload.get("satisfied"),
                        source_id=payload.get("source_id"),
                        closed_at=datetime.fromisoformat(payload["closed_at"]) if payload.get("closed_at") else None)
        out[rec.id] = base
    return out


def shaped(profile: Profile, rec: OutboxRecord, values: dict | None) -> dict:
    """The record as sent and exported: ``{id, type, data}``, data in the profile's shape; Held if it cannot be."""
    if values is None:
        raise Held([f"rating {rec.rating_id} no longer exists"])
    return {"id": rec.record_id, "type": rec.kind, "data": profile.encode(rec.kind, values)}
