"""hcp's tables (SQLAlchemy 2.x) and their Alembic migrations (``models/migrations``)."""
from models.audit import AuditEntry
from models.cases import (CalendarOverride, Case, CaseEvent, Notification, OPEN_STATUSES,
                          OUTCOME_LABELS, STATUS_LABELS)
from models.clients import CLIENT_KINDS, IntegrationClient
from models.exchange import OUTBOX_STATE_LABELS, OUTBOX_STATES, InboundSource, OutboxRecord, rating_record_id
from models.invitations import INVITATION_STATES, Invitation, UnsettledInvitation
from models.insights import InsightCounted, InsightTerm, InsightTermMonthly
from models.org import (CHANNEL_LABELS, CHANNELS, ROLE_LABELS, ROLES, ApiToken, Department, Device, PairCode,
                        PasswordLink, QrVoter, ServiceItem, User)
from models.projects import APPLICANT_KINDS, STAGE_LABELS, STAGES, Project
from models.reasons import REASON_SCOPES, Reason, ReasonVersion
from models.ratings import LEVEL_LABELS, Rating, is_bad
from models.routing import RouteResend, SweepWatermark
from models.stats import StatsDaily, StatsDailyDetail, StatsMonthly, StatsMonthlyItem, StatsOpen
from models.suspicious import (FLAG_STATE_LABELS, FLAG_STATES, RULE_LABELS, RULES, SuspiciousFlag,
                               SuspiciousFlagEvent, SuspiciousFlagRating, SuspiciousMark)

__all__ = [
    "APPLICANT_KINDS", "ApiToken", "AuditEntry", "CHANNEL_LABELS", "CHANNELS", "CLIENT_KINDS", "CalendarOverride",
    "Case",
    "CaseEvent", "Department", "Device", "QrVoter", "InsightCounted", "InsightTerm", "InsightTermMonthly",
    "INVITATION_STATES",
    "InboundSource", "IntegrationClient", "Invitation", "OUTBOX_STATES", "OUTBOX_STATE_LABELS", "OutboxRecord",
    "Project",
    "rating_record_id",
    "STAGES", "STAGE_LABELS",
    "LEVEL_LABELS", "Notification", "OPEN_STATUSES", "OUTCOME_LABELS", "PairCode", "PasswordLink",
    "REASON_SCOPES", "ROLE_LABELS", "ROLES",
    "Rating",
    "Reason", "ReasonVersion",
    "RouteResend", "STATUS_LABELS", "ServiceItem", "StatsDaily", "StatsDailyDetail", "StatsMonthly", "StatsMonthlyItem",
    "StatsOpen",
    "FLAG_STATES", "FLAG_STATE_LABELS", "RULES", "RULE_LABELS", "SuspiciousFlag", "SuspiciousFlagEvent",
    "SuspiciousFlagRating", "SuspiciousMark", "SweepWatermark", "UnsettledInvitation",
    "User", "is_bad",
]
