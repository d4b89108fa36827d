"""Figures as a spreadsheet: xlsx (openpyxl) and CSV (UTF-8 with BOM, so Excel reads it).

Columns carry Chinese headings; the period and the scope are written above the table;
counts are numbers and rates are numbers formatted as percentages (an empty cell where
a rate has no denominator). Group labels (staff numbers, window names, item codes) are
free text: both formats are written through service/spreadsheet.py, so none runs as a formula.
"""
from __future__ import annotations

import io
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from models.types import utcnow
from models.clock import SHANGHAI
from service.spreadsheet import append_row, csv_bytes

# (figure key, heading, is a rate)
COLUMNS = [
    ("total", "评价总数", False), ("good", "好评数", False), ("bad", "差评数", False),
    ("level_5", "非常满意", False), ("level_4", "满意", False), ("level_3", "基本满意", False),
    ("level_2", "不满意", False), ("level_1", "非常不满意", False),
    ("good_rate", "好评率", True), ("closed", "已办结差评", False), ("disposal_rate", "差评处置率", True),
    ("closed_rectified", "已整改办结", False), ("rectifiable", "应整改差评", False),
    ("rectification_rate", "差评整改率", True), ("called_back", "已回访(实名)", False),
    ("real_name_bad", "实名差评", False), ("callback_rate", "回访率", True),
    ("closed_on_time", "按期办结", False), ("on_time_base", "应按期办结", False),
    ("on_time_rate", "按期办结率", True), ("feedback_satisfaction_rate", "回访整改满意率", True),
    ("open", "未办结", False), ("overdue_open", "超期未办结", False), ("red", "红牌", False),
    ("yellow", "黄牌", False),
]
GROUP_HEADINGS = {"department": "部门", "channel": "评价渠道", "item": "服务事项", "window": "窗口",
                  "staff": "工号", "month": "月份", "day": "日期", "reason": "评价原因"}


def _value(row: dict, key: str):
    if key.startswith("level_"):
        return row["by_level"][key[-1]]
    return row[key]


def _preamble(scope: dict) -> list[tuple[str, str]]:
    parts = [scope.get("department_name") or "全部部门"]
    if scope.get("channel"):
        parts.append(f"渠道 {scope['channel']}")
    if scope.get("item"):
        parts.append(f"事项 {scope['item']}")
    if scope.get("window"):
        parts.append(f"窗口 {scope['window']}")
    exported = utcnow().astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    return [("统计期间", f"{scope['date_from'].isoformat()} 至 {scope['date_to'].isoformat()}（评价日期，北京时间）"),
            ("统计范围", "，".join(parts)), ("导出时间", exported)]


def _table(result: dict, by: str | None) -> tuple[list[str], list[tuple[str, dict]]]:
    headings = [GROUP_HEADINGS.get(by, "统计") if by else "统计"] + [h for _, h, _ in COLUMNS]
    rows = [(g["label"], g) for g in result.get("groups", [])]
    rows.append(("合计", result["total"] if by else result))
    return headings, rows


def to_xlsx(result: dict, scope: dict, by: str | None) -> bytes:
    """An xlsx workbook of one sheet: title, period and scope, then the table."""
    wb = Workbook()
    ws = wb.active
    ws.title = "好差评统计"
    append_row(ws, ["好差评统计报表"])
    ws["A1"].font = Font(bold=True, size=14)
    for label, value in _preamble(scope):
        append_row(ws, [label, value])
    ws.append([])
    headings, rows = _table(result, by)
    append_row(ws, headings)
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
    for label, row in rows:
        append_row(ws, [label] + [_value(row, key) for key, _, _ in COLUMNS])
        for col, (_, _, is_rate) in enumerate(COLUMNS, start=2):
            if is_rate:
                ws.cell(row=ws.max_row, column=col).number_format = "0.00%"
    ws[ws.max_row][0].font = Font(bold=True)
    ws.column_dimensions["A"].width = 24
    for col in range(2, len(headings) + 1):
        ws.column_dimensions[get_column_letter(col)].width = 11
    ws.freeze_panes = ws.cell(row=header_row + 1, column=2)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_csv(result: dict, scope: dict, by: str | None) -> bytes:
    """CSV in UTF-8 with a BOM; rates as percentages with two decimals (Excel reads them as numbers)."""
    lines = [[label, value] for label, value in _preamble(scope)]
    lines.append([])
    headings, rows = _table(result, by)
    lines.append(headings)
    for label, row in rows:
        cells = [label]
        for key, _, is_rate in COLUMNS:
            value = _value(row, key)
            cells.append(None if value is None else (f"{value * 100:.2f}%" if is_rate else value))
        lines.append(cells)
    return csv_bytes(lines)


def filename(scope: dict, fmt: str, when: datetime | None = None) -> str:
    return f"hcp-stats-{scope['date_from'].isoformat()}-{scope['date_to'].isoformat()}.{fmt}"
