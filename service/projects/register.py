"""Registering applications: an idempotent upsert whose stage only moves forward.

The first PUT of a ``project_no`` inserts it (``INSERT … ON CONFLICT (project_no) DO
NOTHING``); any later one — also a concurrent first one that lost the race — locks the
row and updates it, refusing a stage that would move back.

On PostgreSQL the first PUT is one statement in autocommit (``create``): the item looked
up in the client's subtree, the application, its invitations and their SMS outbox rows
inserted as data-modifying CTEs (and the invitations queued for the default sweep,
``invitations_unsettled``), and whether ratings already name it — one round trip
instead of a dozen ORM statements and a transaction. A ``project_no`` that exists already
(nothing inserted) goes the ORM way (``upsert``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

from psycopg.rows import namedtuple_row
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import STAGES, IntegrationClient, Invitation, Project, ServiceItem, conflict, rowsets
from models.types import utcnow
from service.invitations import issue
from service.invitations import sms as sms_sender
from service.privacy import blind_index, decrypt, encrypt, mask_name, mask_phone
from service.suspicious import rules


class Refused(Exception):
    """A registration that cannot be stored; ``status`` is the HTTP answer, ``field`` the culprit."""

    status = 422
    field: str | None = None

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownItem(Refused):
    field = "item_code"


class StageBackwards(Refused):
    status = 409
    field = "stage"


class OtherDepartment(Refused):
    status = 409


def _in_subtree(client: IntegrationClient, department) -> bool:
    return department.path.startswith(client.department.path)


def _values(body: dict, item: ServiceItem | None) -> dict:
    """The columns a PUT sets, the applicant's in clear still (``_applicant`` encrypts);
    without ``item``, all but the item's (``create`` finds it in the same statement)."""
    return {
        **({"item_id": item.id, "department_id": item.department_id} if item else {}), "stage": body["stage"],
        "accepted_at": body.get("accepted_at"), "done_at": body.get("done_at"),
        "promised_at": body.get("promised_at"), "staff_no": body.get("staff_no"),
        "applicant_kind": body["applicant"]["kind"],
    }


def _applicant(name: str | None, phone: str | None) -> dict:
    return {"applicant_name_enc": encrypt(name), "applicant_name_masked": mask_name(name),
            "applicant_phone_enc": encrypt(phone), "applicant_phone_masked": mask_phone(phone),
            "applicant_phone_index": blind_index(phone)}


@dataclass
class Registered:
    project: Project
    created: bool
    sms: list[int]  # outbox deliveries of new invitations, to send after the commit


def upsert(session: Session, client: IntegrationClient, project_no: str, body: dict) -> Registered:
    """Store the application and invite its applicant for each rated stage it reached.

    Raises a Refused subclass; the caller commits, then sends ``sms``
    (service.invitations.issue.send_after_commit). An application registered, or given its
    acceptance time, after ratings on it arrived has those ratings checked against the
    suspicious rule "rated before acceptance" now (they could not be when they arrived).
    """
    project, created, accepted_now = _upsert(session, client, project_no, body)
    if accepted_now:
        rules.recheck_project(session, project_no, project.accepted_at)
    return Registered(project, created, issue.ensure(session, project))


def _upsert(session: Session, client: IntegrationClient, project_no: str,
            body: dict) -> tuple[Project, bool, bool]:
    """(project, created, whether its acceptance time was set or changed now)."""
    item = session.scalar(select(ServiceItem).where(ServiceItem.code == body["item_code"]))
    if item is None or not _in_subtree(client, item.department):
        raise UnknownItem(f"unknown service item {body['item_code']}")
    values = _values(body, item)
    name, phone = body["applicant"].get("name"), body["applicant"].get("phone")
    now = utcnow()
    new_id = session.scalar(
        conflict.insert(session, Project)
        .values(project_no=project_no, client_id=client.id, created_at=now, updated_at=now,
                **values, **_applicant(name, phone))
        .on_conflict_do_nothing(index_elements=["project_no"]).returning(Project.id))
    if new_id is not None:
        return session.get(Project, new_id), True, values["accepted_at"] is not None

    project = session.scalar(select(Project).where(Project.project_no == project_no)
                             .with_for_update().execution_options(populate_existing=True))
    if not _in_subtree(client, project.department):
        raise OtherDepartment(f"project {project_no} is registered by another department")
    if STAGES.index(values["stage"]) < project.stage_rank:
        raise StageBackwards(f"project {project_no} is already at stage {project.stage}; a stage only moves forward")
    # A time or staff_no the update leaves out keeps its value (a done PUT need not repeat accepted_at).
    values = {k: v for k, v in values.items() if v is not None}
    if (decrypt(project.applicant_name_enc), decrypt(project.applicant_phone_enc)) != (name, phone):
        values.update(_applicant(name, phone))  # Fernet tokens differ each time: only on a real change
    changed = {k: v for k, v in values.items() if getattr(project, k) != v}
    for key, value in changed.items():
        setattr(project, key, value)
    if changed:
        project.updated_at = now
    return project, False, "accepted_at" in changed


@dataclass
class Created:
    """An application the fast path registered: what its answer needs, without the ORM."""

    project: dict  # the columns of projects, as stored
    item: dict  # {code, name, department_code, department_name}
    invitations: list[dict]  # {id, stage, stage_at, expires_at}
    rated: bool  # ratings already name this project_no
    sms: list[int]


_PROJECT_COLUMNS = ("project_no", "client_id", "item_id", "department_id", "stage", "accepted_at", "done_at",
                    "promised_at", "staff_no", "applicant_kind", "applicant_name_enc", "applicant_phone_enc",
                    "applicant_name_masked", "applicant_phone_masked", "applicant_phone_index", "created_at",
                    "updated_at")
_FROM_ITEM = {"item_id": "item.id", "department_id": "item.department_id"}
_TIMES = {"accepted_at", "done_at", "promised_at", "created_at", "updated_at"}
_PLANNED = ("stage", "nonce", "token_hash", "stage_at", "expires_at", "created_at")  # issue.planned's rows
_CREATE = f"""
WITH item AS (
  SELECT si.id, si.department_id, si.code, si.name, d.code AS department_code, d.name AS department_name
  FROM service_items si JOIN departments d ON d.id = si.department_id
  WHERE si.code = %(item_code)s AND starts_with(d.path, %(client_path)s)),
project AS (
  INSERT INTO projects ({", ".join(_PROJECT_COLUMNS)})
  SELECT {", ".join(_FROM_ITEM.get(c) or (f"%({c})s::timestamptz" if c in _TIMES else f"%({c})s")
                    for c in _PROJECT_COLUMNS)}
  FROM item
  ON CONFLICT (project_no) DO NOTHING RETURNING id),
invited AS (
  INSERT INTO invitations (project_id, stage, nonce, token_hash, stage_at, expires_at, created_at)
  SELECT project.id, t.stage, t.nonce, t.token_hash, t.stage_at, t.expires_at, t.created_at
  FROM project, {rowsets.recordset(Invitation.__table__, _PLANNED, "planned")}
  ON CONFLICT (project_id, stage) DO NOTHING RETURNING id, project_id, stage, stage_at, expires_at),
unsettled AS (
  INSERT INTO invitations_unsettled (expires_at, invitation_id, project_id)
  SELECT expires_at, id, project_id FROM invited),
sms AS (
  INSERT INTO notifications (kind, key, payload, created_at, attempts)
  SELECT '{sms_sender.KIND}', {issue.SMS_KEY_SQL.format(id="invited.id")},
         json_build_object('invitation_id', invited.id), %(created_at)s::timestamptz, 0
  FROM invited WHERE %(has_phone)s
  ON CONFLICT (key) DO NOTHING RETURNING id)
SELECT item.id AS item_id, item.department_id, item.code, item.name, item.department_code, item.department_name,
       (SELECT id FROM project) AS project_id,
       (SELECT array_agg(id) FROM invited) AS invitation_ids,
       (SELECT array_agg(stage) FROM invited) AS invitation_stages,
       (SELECT array_agg(stage_at) FROM invited) AS invitation_stage_ats,
       (SELECT array_agg(expires_at) FROM invited) AS invitation_expires,
       (SELECT array_agg(id ORDER BY id) FROM sms) AS sms_ids,
       EXISTS (SELECT 1 FROM ratings WHERE project_no = %(project_no)s) AS rated
FROM (SELECT 1) one LEFT JOIN item ON true
"""


def create(conn, client, project_no: str, body: dict) -> Created | None:
    """PostgreSQL, ``conn`` a psycopg connection in autocommit (service.pooling.driver_connection):
    register a new ``project_no`` in one statement.

    None when it exists already (the caller goes on with ``upsert``); UnknownItem for an
    item not in the client's subtree. The applicant is encrypted and blind-indexed and the
    invitations planned (``issue.planned``) exactly as ``upsert`` does.
    """
    name, phone = body["applicant"].get("name"), body["applicant"].get("phone")
    now = utcnow()
    values = {**_values(body, None), **_applicant(name, phone), "project_no": project_no, "client_id": client.id,
              "created_at": now, "updated_at": now}
    planned = issue.planned(values["stage"], values["accepted_at"], values["done_at"])
    # The invitations as one JSON parameter (models/rowsets.py): as six arrays, psycopg's
    # dumping of them was about 7 % of the request's web CPU.
    params = {**values, "item_code": body["item_code"], "client_path": client.department.path,
              "has_phone": bool(values["applicant_phone_enc"]),
              "planned": rowsets.dumps(planned)}
    row = conn.cursor(row_factory=namedtuple_row).execute(_CREATE, params).fetchone()
    if row.item_id is None:
        raise UnknownItem(f"unknown service item {body['item_code']}")
    if row.project_id is None:
        return None
    stored = {**values, "id": row.project_id, "item_id": row.item_id, "department_id": row.department_id}
    for key in _TIMES:  # as the ORM gives them back: aware, in UTC
        if stored[key] is not None:
            stored[key] = stored[key].astimezone(timezone.utc)
    invitations = [{"id": i, "stage": stage, "stage_at": at, "expires_at": expires.astimezone(timezone.utc)}
                   for i, stage, at, expires in zip(row.invitation_ids or [], row.invitation_stages or [],
                                                    row.invitation_stage_ats or [], row.invitation_expires or [])]
    item = {"code": row.code, "name": row.name, "department_code": row.department_code,
            "department_name": row.department_name}
    return Created(stored, item, invitations, row.rated, list(row.sms_ids or []))


def recheck_created(session: Session, created: Created) -> None:
    """A new application (the fast path) that ratings already name (``created.rated``): those
    made before its acceptance are checked against the suspicious rule now, as ``upsert``
    does. The caller commits."""
    rules.recheck_project(session, created.project["project_no"], created.project["accepted_at"])
