"""Figures as a spreadsheet: xlsx (XlsxWriter) and CSV (UTF-8 with BOM, so Excel reads it).

Columns carry Chinese headings; the period and the scope are written above the table;
counts are numbers and rates are numbers formatted as percentages (an empty cell where
a rate has no denominator). Group labels (staff numbers, window names, item codes) are
free text: both formats are written through service/spreadsheet.py, so none runs as a formula.
"""
from __future__ import annotations

import io
from datetime import datetime


from models.types import utcnow
from models.clock import SHANGHAI
from service.spreadsheet import csv_bytes, xlsx_sheet

# (figure key, heading, is a rate)
COLUMNS = [
    ("total", "评价总数", False), ("good", "好评数", False), ("bad", "差评数", False),
    ("level_5", "非常满意", False), ("level_4", "满意", False), ("level_3", "基本满意", False),
    ("level_2", "不满意", False), ("level_1", "非常不满意", False),
    ("good_rate", "好评率", True), ("default", "默认评价", False), ("rated_total", "主动评价", False),
    ("good_rate_rated", "好评率(不含默认)", True), ("active_rating_rate", "主动评价率", True),
    ("projects", "应评办件", False), ("rated_projects", "已评办件", False), ("rated_projects_rate", "办件评价率", True),
    ("closed", "已办结差评", False), ("disposal_rate", "差评处置率", True),
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
    out = io.BytesIO()
    headings, rows = _table(result, by)
    rates = {col: {"num_format": "0.00%"} for col, (_, _, is_rate) in enumerate(COLUMNS, start=1) if is_rate}
    with xlsx_sheet(out, "好差评统计") as sheet:
        sheet.ws.set_column(0, 0, 24)
        sheet.ws.set_column(1, len(headings) - 1, 11)
        sheet.append(["好差评统计报表"], style={"bold": True, "font_size": 14})
        for label, value in _preamble(scope):
            sheet.append([label, value])
        sheet.append([])
        header_row = sheet.append(headings, style={"bold": True, "align": "center", "text_wrap": True})
        sheet.ws.freeze_panes(header_row + 1, 1)
        for i, (label, row) in enumerate(rows):
            styles = {**rates, 0: {"bold": True}} if i == len(rows) - 1 else rates  # the total
            sheet.append([label] + [_value(row, key) for key, _, _ in COLUMNS], styles=styles)
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
