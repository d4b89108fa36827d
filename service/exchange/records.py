"""Outbox rows as neutral records, then in a profile's shape (SPEC §8).

The neutral record is what every profile maps from (``service/exchange/profiles.py``):
a rating's values read from its row, its department's credit code, its item's code and
HCP_AREA_CODE; a case's result as the outbox row kept it at closing. One query per
batch, whatever its size.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Department, InboundSource, OutboxRecord, Rating, ServiceItem, rating_record_id
from service.exchange.profiles import Held, Profile


def _ratings(session: Session, rating_ids: set[int]) -> dict[int, dict]:
    rows = session.execute(
        select(Rating.id, Rating.project_no, Rating.channel, Rating.level, Rating.assess_number, Rating.rated_at,
               Rating.reasons, Rating.comment, Rating.rater_name_masked, Rating.real_name,
               Department.credit_code, ServiceItem.code.label("item_code"), InboundSource.source_id)
        .join(Department, Department.id == Rating.department_id)
        .outerjoin(ServiceItem, ServiceItem.id == Rating.item_id)
        .outerjoin(InboundSource, InboundSource.rating_id == Rating.id)
        .where(Rating.id.in_(rating_ids)))
    return {r.id: r._asdict() for r in rows}


def neutral(session: Session, records: list[OutboxRecord], area_code: str | None) -> dict[int, dict | None]:
    """The neutral record of each outbox row, by its id (None: its rating is gone)."""
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
