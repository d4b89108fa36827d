"""Registering applications: an idempotent upsert whose stage only moves forward.

The first PUT of a ``project_no`` inserts it (``INSERT … ON CONFLICT (project_no) DO
NOTHING``); any later one — also a concurrent first one that lost the race — locks the
row and updates it, refusing a stage that would move back.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import STAGES, IntegrationClient, Project, ServiceItem
from models.types import utcnow
from service.invitations import issue
from service.privacy import blind_index, decrypt, encrypt, mask_name, mask_phone


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


def _values(body: dict, item: ServiceItem) -> dict:
    """The columns a PUT sets, the applicant's in clear still (``_applicant`` encrypts)."""
    return {
        "item_id": item.id, "department_id": item.department_id, "stage": body["stage"],
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
    (service.invitations.issue.send_after_commit).
    """
    project, created = _upsert(session, client, project_no, body)
    return Registered(project, created, issue.ensure(session, project))


def _upsert(session: Session, client: IntegrationClient, project_no: str, body: dict) -> tuple[Project, bool]:
    item = session.scalar(select(ServiceItem).where(ServiceItem.code == body["item_code"]))
    if item is None or not _in_subtree(client, item.department):
        raise UnknownItem(f"unknown service item {body['item_code']}")
    values = _values(body, item)
    name, phone = body["applicant"].get("name"), body["applicant"].get("phone")
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    new_id = session.scalar(
        insert(Project).values(project_no=project_no, client_id=client.id, created_at=now, updated_at=now,
                               **values, **_applicant(name, phone))
        .on_conflict_do_nothing(index_elements=["project_no"]).returning(Project.id))
    if new_id is not None:
        return session.get(Project, new_id), True

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
    return project, False
