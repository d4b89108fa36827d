"""``/api/v1/projects``: the approval system registers applications; staff read them."""
from __future__ import annotations

from types import SimpleNamespace

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import select

from models import STAGE_LABELS, Project, Rating
from service.auth.access import in_scope, staff_required
from service.auth.clients import client_or_staff, client_required
from service.edge import Blueprint
from service.extensions import db
from service.pooling import driver_connection, intake_engine
from service.invitations import issue, tokens
from service.projects import register
from service.projects.schemas import PROJECT_NO, InvitationOut, ProjectIn, ProjectOut

blp = Blueprint("projects", __name__, url_prefix="/api/v1/projects", description="Applications (办件)")


def project_view(project: Project) -> dict:
    """The application as staff and its client see it: applicant masked, ratings made."""
    columns = {name: getattr(project, name) for name in _SHOWN}
    return _view(columns, project.item, project.department, _ratings(project.project_no),
                 _invitation_view(project, with_url=False))


def created_view(created: register.Created) -> dict:
    """``project_view`` of an application ``register.create`` just made, without reading it back."""
    item = created.item
    ratings = _ratings(created.project["project_no"]) if created.rated else []
    latest = max(created.invitations, key=lambda i: (i["stage_at"], i["id"]), default=None)
    invitation = latest and {"stage": latest["stage"], "expires_at": latest["expires_at"],
                             "state": issue.state_of(None, latest["expires_at"])}
    return _view(created.project, SimpleNamespace(code=item["code"], name=item["name"]),
                 SimpleNamespace(code=item["department_code"], name=item["department_name"]), ratings, invitation)


_SHOWN = ("project_no", "stage", "accepted_at", "done_at", "promised_at", "staff_no", "applicant_kind",
          "applicant_name_masked", "applicant_phone_masked")


def _ratings(project_no: str) -> list[Rating]:
    return db.session.scalars(select(Rating).where(Rating.project_no == project_no)
                              .order_by(Rating.rated_at, Rating.id)).all()


def _view(p: dict, item, department, ratings: list, invitation: dict | None) -> dict:
    return {
        "project_no": p["project_no"], "item_code": item.code, "item_name": item.name,
        "department": department.code, "department_name": department.name,
        "stage": p["stage"], "stage_label": STAGE_LABELS[p["stage"]],
        "accepted_at": p["accepted_at"], "done_at": p["done_at"], "promised_at": p["promised_at"],
        "staff_no": p["staff_no"],
        "applicant": {"kind": p["applicant_kind"], "name": p["applicant_name_masked"],
                      "phone": p["applicant_phone_masked"]},
        "ratings": ratings,
        "invitation": invitation,
    }


def _invitation_view(project: Project, with_url: bool) -> dict | None:
    invitation = issue.latest(db.session, project)
    if invitation is None:
        return None
    out = {"stage": invitation.stage, "expires_at": invitation.expires_at,
           "state": issue.state(db.session, invitation)}
    if with_url:
        out["url"] = tokens.link(tokens.token_for(invitation.nonce))
    return out


def _project_no(project_no: str) -> str:
    try:
        PROJECT_NO(project_no)
    except Exception:  # noqa: BLE001 — marshmallow's ValidationError: the path is the field
        abort(422, errors={"path": {"project_no": ["1–64 letters, digits, '_', '.' or '-'"]}},
              message="invalid project_no")
    return project_no


@blp.route("/<string:project_no>")
class ProjectByNo(MethodView):
    @client_required("approval")
    @blp.arguments(ProjectIn())  # an instance, made once (a class is instantiated per request)
    @blp.response(200, ProjectOut, description="updated (or the same again: nothing changed)")
    @blp.alt_response(201, schema=ProjectOut, description="registered")
    @blp.alt_response(409, description="the stage would move back, or another department holds this project_no")
    def put(self, body, project_no):
        """Register or update an application (approval client). Idempotent; a stage only moves forward."""
        _project_no(project_no)
        try:
            created = None
            if intake_engine().dialect.name == "postgresql":  # a new project_no: one statement (register.create)
                with driver_connection() as conn:
                    created = register.create(conn, g.client, project_no, body)
            if created is None:
                done = register.upsert(db.session, g.client, project_no, body)
        except register.Refused as err:
            db.session.rollback()
            if err.status == 422:
                abort(422, errors={"json": {err.field: [err.message]}}, message=err.message)
            abort(err.status, message=err.message)
        if created is not None:
            if created.rated:  # ratings came before the application: the rule checks them now
                register.recheck_created(db.session, created)
                db.session.commit()
            issue.send_after_commit(created.sms)
            return created_view(created), 201
        db.session.commit()
        issue.send_after_commit(done.sms)
        return project_view(done.project), (201 if done.created else 200)

    @staff_required()
    @blp.response(200, ProjectOut)
    @blp.alt_response(404, description="no such application in your departments")
    def get(self, project_no):
        """An application (applicant masked) with its stages and the ratings made; staff in scope."""
        project = db.session.scalar(select(Project).where(Project.project_no == project_no))
        if project is None or not in_scope(g.user, project.department):
            abort(404, message="project not found")
        return project_view(project)


def _visible(project: Project | None) -> bool:
    """Staff whose subtree holds the application, or a client (approval) whose subtree does."""
    if project is None:
        return False
    if g.get("client") is not None:
        return project.department.path.startswith(g.client.department.path)
    return in_scope(g.user, project.department)


@blp.route("/<string:project_no>/invitation")
class ProjectInvitation(MethodView):
    @client_or_staff("approval")
    @blp.response(200, InvitationOut)
    @blp.alt_response(404, description="no such application in your departments, or no invitation yet")
    def get(self, project_no):
        """The link the applicant was invited with (for the receipt), its expiry and state."""
        project = db.session.scalar(select(Project).where(Project.project_no == project_no))
        if not _visible(project):
            abort(404, message="project not found")
        view = _invitation_view(project, with_url=True)
        if view is None:
            abort(404, message="no invitation yet: the application has not reached a rated stage")
        return view
