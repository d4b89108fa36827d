"""Inbound records (SPEC §8): ratings the provincial platform sends down, 12345 callbacks.

Each record is mapped from the client's profile (an upstream client: HCP_EXCHANGE_PROFILE,
as ``{id, data}``; a hotline client: the ``hotline`` profile, flat, its ``ticket_no`` the
record id), checked by the same schema and intake as a device's rating, and stored with
``store`` — so it is idempotent the same way: its ``client_id`` is derived from the client
and the source's record id, and the body hash tells a replay from a conflict. Beside each
new rating an ``exchange_sources`` row remembers where it came from, in the same
transaction, so its case's result goes back there (service/exchange/outbox.py).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import SimpleNamespace

from marshmallow import ValidationError
from sqlalchemy import insert

from models import CHANNEL_LABELS, InboundSource, IntegrationClient
from service.exchange import outbox, profiles
from service.exchange.push import HOTLINE_PROFILE
from service.extensions import db
from service.ratings import after_commit
from service.invitations.rate import system_device
from service.ratings import intake
from service.ratings.intake import Outcome
from service.ratings.schemas import RaterIn, RatingIn

# The namespace of inbound ratings' client_ids: uuid5(NAMESPACE, "client id:source record id").
NAMESPACE = uuid.UUID("6f1d8f52-3c1e-5b0e-9a57-2b8f4f3a0e14")
UPSTREAM_CHANNELS = ("pc", "mobile")  # what the platform's own online channels send down
MAX_SOURCE_ID = 64
RATING_IN, RATER_IN = RatingIn(), RaterIn()


@dataclass
class Result:
    """One record's answer: ``{id, status, rating_id?, errors?}``."""

    id: str | None
    status: str  # created | duplicate | conflict | invalid
    rating_id: int | None = None
    errors: dict | None = None


def client_id_for(client: IntegrationClient, source_id: str) -> str:
    """The rating's idempotency key: the same source record always maps to the same one."""
    return str(uuid.uuid5(NAMESPACE, f"{client.id}:{source_id}"))


def _profile(client: IntegrationClient, settings) -> profiles.Profile:
    return profiles.load(HOTLINE_PROFILE if client.kind == "hotline" else settings.exchange_profile)


def _source_id(raw) -> str | None:
    if isinstance(raw, (str, int)) and not isinstance(raw, bool) and 1 <= len(str(raw)) <= MAX_SOURCE_ID:
        return str(raw)
    return None


def _map(client: IntegrationClient, profile: profiles.Profile, raw) -> tuple[str | None, str | None, dict]:
    """(source id, channel, RatingIn body) of one record, or (source id, None, errors)."""
    if not isinstance(raw, dict):
        return None, None, {"record": ["must be an object"]}
    if client.kind == "hotline":
        id_field, data = "ticket_no", raw
    else:
        id_field, data = "id", raw.get("data")
        if not isinstance(data, dict):
            return _source_id(raw.get("id")), None, {"data": [f"the record's fields in profile {profile.name}"]}
    source = _source_id(raw.get(id_field))
    if source is None:
        return None, None, {id_field: [f"required: the source's record id, 1–{MAX_SOURCE_ID} characters"]}
    values, errors = profile.decode_record("rating", data)
    names = {neutral: name for name, neutral in profile.fields["rating"].items()}  # to answer in the client's terms
    for neutral in ("level", "rated_at"):
        if neutral not in values and names[neutral] not in errors:
            errors[names[neutral]] = ["required"]
    if client.kind == "hotline":
        channel = "hotline"
        caller = raw.get("caller")
        if caller not in (None, {}):
            try:
                rater = RATER_IN.load({"real_name": True, **caller} if isinstance(caller, dict) else caller)
            except ValidationError as err:
                errors["caller"] = err.messages
            else:
                values["rater"] = rater
    else:
        channel = values.get("channel")
        if channel not in UPSTREAM_CHANNELS:
            errors.setdefault(names.get("channel", "channel"),
                              [f"only {' or '.join(UPSTREAM_CHANNELS)} ratings come down from the platform"])
    if errors:
        return source, None, errors
    body = {"client_id": client_id_for(client, source), "level": values["level"],
            "rated_at": values["rated_at"].isoformat()}
    for key in ("item_code", "project_no", "comment", "reasons", "rater"):
        if values.get(key) not in (None, "", []):
            body[key] = values[key]
    try:
        loaded = RATING_IN.load(body)
    except ValidationError as err:
        return source, None, {names.get(k, k): v for k, v in err.messages.items()}
    if values.get("assess_number") in (1, 2):
        loaded["assess_number"] = values["assess_number"]
    return source, channel, loaded


def receive(client: IntegrationClient, records: list, settings, request_id: str | None = None) -> list[Result]:
    """Store the valid records of one request; one Result per record, in order."""
    profile = _profile(client, settings)
    mapped = [_map(client, profile, raw) for raw in records]
    devices = {}
    for _, channel, _ in mapped:
        if channel and channel not in devices:
            device = system_device(db.session, client.department_id, channel,
                                   name=f"{client.name}·{CHANNEL_LABELS[channel]}"[:200])
            devices[channel] = SimpleNamespace(id=device.id, department_id=device.department_id,
                                               channel=device.channel, window=None)
    client_key, report = client.id, client.kind != "upstream"  # the platform has its own ratings
    # The session's transaction ends (and, on SQLite, its lock) before the intake's connection
    # writes; nothing below touches the session's rows again.
    db.session.commit()
    outcomes: list[Outcome | None] = [None] * len(records)
    # A transaction also on PostgreSQL (whose intake engine autocommits): rating, outbox
    # record and source row stand or fall together.
    with db.engine.begin() as conn:
        for channel, device in devices.items():
            positions = [n for n, (_, ch, _) in enumerate(mapped) if ch == channel]
            stored = intake.store(conn, device, [mapped[n][2] for n in positions], request_id=request_id,
                                  report=report)
            sources = []
            for n, outcome in zip(positions, stored):
                outcomes[n] = outcome
                if outcome.status == "created":
                    sources.append({"rating_id": outcome.rating["id"], "client_id": client_key,
                                    "source_id": mapped[n][0]})
            if sources:
                conn.execute(insert(InboundSource), sources)
                if report:  # their records were coded before the source was written: again, with it
                    outbox.pg_code_ratings(conn, [r["rating_id"] for r in sources])
    made = [(o, m[2]) for o, m in zip(outcomes, mapped) if o is not None]
    after_commit.send_tasks([o for o, _ in made], [b for _, b in made], request_id)
    names = {neutral: name for name, neutral in profile.fields["rating"].items()}
    results = []
    for (source, channel, body), outcome in zip(mapped, outcomes):
        if outcome is None:
            results.append(Result(source, "invalid", errors=body))
        elif outcome.status == "invalid":  # an unknown item or reason: named as the client names it
            results.append(Result(source, "invalid", errors={names.get(k, k): v for k, v in outcome.errors.items()}))
        else:
            rating_id = outcome.rating["id"] if outcome.rating else None
            results.append(Result(source, outcome.status, rating_id))
    return results
