"""The case export (SPEC §9): one row per case, xlsx or CSV, streamed.

The rows come from the list query (``service.cases.query``, so the export has the list's
filters and scope) read with ``yield_per`` — a server-side cursor on PostgreSQL — and
are written as they arrive: CSV line by line into the response, xlsx row by row by
XlsxWriter's constant-memory writer into a temporary file that is then sent in chunks. A million cases
never sit in memory. The rater is masked; every text cell goes through
``service.spreadsheet`` so a comment like ``=HYPERLINK(…)`` stays text.
"""
from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from models import (CHANNEL_LABELS, LEVEL_LABELS, OUTCOME_LABELS, STATUS_LABELS, Case, CaseEvent, Department,
                    Rating, Reason, ServiceItem, User)
from models.clock import SHANGHAI, local_date
from service.reasons.table import labels, shipped
from service.spreadsheet import safe_text, xlsx_sheet

HEADINGS = ("工单编号", "办件编号", "服务事项", "部门", "评价等级", "评价内容", "评价指标", "评价时间", "评价渠道",
            "承办人", "状态", "办结类型", "回访期限", "办结期限", "办结时间", "按期办结", "差评原因", "整改措施",
            "评价人")
BATCH = 2000  # rows fetched per round trip
CHUNK = 1 << 16  # bytes per piece of the response


def rows_select(stmt: Select) -> Select:
    """The export's columns for the cases ``stmt`` (a ``case_select(…, join_rating=True)``)
    selects, in id order.

    The rectification's cause and action are the latest ``rectify`` entry of the history.
    """
    assignee = aliased(User)
    measures = (select(CaseEvent.data).where(CaseEvent.case_id == Case.id, CaseEvent.action == "rectify")
                .order_by(CaseEvent.id.desc()).limit(1).correlate(Case).scalar_subquery())
    return (stmt.with_only_columns(
        Case.id, Rating.project_no, ServiceItem.name.label("item_name"), Department.name.label("department_name"),
        Rating.level, Rating.comment, Rating.reasons,
        Rating.rated_at, Rating.channel, assignee.display_name, assignee.username, Case.status, Case.outcome,
        Case.callback_due, Case.close_due, Case.closed_at, Rating.real_name, Rating.rater_name_masked,
        Rating.rater_phone_masked, measures.label("measures"))
        .outerjoin(ServiceItem, ServiceItem.id == Rating.item_id)
        .join(Department, Department.id == Case.department_id)
        .outerjoin(assignee, assignee.id == Case.assignee_id)
        .order_by(Case.id))


def _local(moment) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else ""


class ReasonLabels:
    """``dimension·label`` of reason codes (the newest version holding each, as
    ``service.reasons.table.labels``), read once before the rows stream: the tables are a few
    hundred rows, and no query runs beside the export's open cursor."""

    def __init__(self, session: Session):
        codes = set(session.scalars(select(Reason.code).distinct())) | {o.code for o in shipped()}
        self.known = {code: f"{o.dimension}·{o.label}" for code, o in labels(session, codes).items()}

    def __call__(self, codes) -> str:
        if not isinstance(codes, list) or not codes:
            return ""
        return "；".join(self.known.get(c, c) for c in codes)


def _row(r, today, reasons: ReasonLabels) -> list:
    on_time = ""
    if r.status == "closed" and r.closed_at is not None:
        on_time = "是" if local_date(r.closed_at) <= r.close_due else "否"
    elif r.close_due < today:
        on_time = "否（超期未办结）"
    measures = r.measures if isinstance(r.measures, dict) else {}
    measures = measures.get("measures") or {}
    rater = "匿名" if not r.real_name else " ".join(p for p in (r.rater_name_masked, r.rater_phone_masked) if p)
    return [r.id, r.project_no or "", r.item_name or "", r.department_name, LEVEL_LABELS.get(r.level, r.level),
            r.comment or "", reasons(r.reasons),
            _local(r.rated_at), CHANNEL_LABELS.get(r.channel, r.channel), r.display_name or r.username or "",
            STATUS_LABELS.get(r.status, r.status), OUTCOME_LABELS.get(r.outcome, "") if r.outcome else "",
            r.callback_due.isoformat() if r.callback_due else "无需回访", r.close_due.isoformat(),
            _local(r.closed_at), on_time, measures.get("cause", ""), measures.get("action", ""), rater]


def rows(session: Session, stmt: Select, today) -> Iterator[list]:
    """Every selected case as an export row, fetched ``BATCH`` at a time."""
    reasons = ReasonLabels(session)
    result = session.execute(rows_select(stmt).execution_options(yield_per=BATCH))
    for r in result:
        yield _row(r, today, reasons)


def csv_stream(session: Session, stmt: Select, today) -> Iterator[bytes]:
    """The CSV file in pieces: UTF-8 with a BOM (Excel reads it), text cells made safe."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow(HEADINGS)
    for row in rows(session, stmt, today):
        writer.writerow([safe_text(cell) for cell in row])
        if buf.tell() >= CHUNK:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


def xlsx_stream(session: Session, stmt: Select, today) -> Iterator[bytes]:
    """The xlsx file in pieces, written row by row to a temporary file on disk."""
    with tempfile.TemporaryFile() as out:
        with xlsx_sheet(out, "差评工单") as sheet:
            sheet.append(HEADINGS, style={"bold": True})
            for row in rows(session, stmt, today):
                sheet.append(row)
        out.seek(0)
        while piece := out.read(CHUNK):
            yield piece
