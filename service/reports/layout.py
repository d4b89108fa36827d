"""The report's outline — headings, paragraphs, tables and charts in order — shared by
every format, so Markdown, Word and PDF say the same thing in the same order."""
from __future__ import annotations

from dataclasses import dataclass

from service.reports.content import Report, count, percent

# (figure key, heading, how it is written) of the department, channel and month tables
FIGURE_COLUMNS = [("total", "评价数", count), ("good", "好评", count), ("bad", "差评", count),
                  ("good_rate", "好评率", percent), ("disposal_rate", "差评处置率", percent),
                  ("rectification_rate", "差评整改率", percent), ("on_time_rate", "按期办结率", percent)]


@dataclass
class Block:
    """One piece of the outline: kind is heading | paragraph | table | chart."""

    kind: str
    text: str = ""
    level: int = 1
    header: list[str] | None = None
    rows: list[list[str]] | None = None
    chart: int | None = None  # index into the report's charts


def _figure_table(label: str, groups: list[dict], total: dict) -> Block:
    rows = [[g["label"]] + [fmt(g[key]) for key, _, fmt in FIGURE_COLUMNS] for g in groups]
    rows.append(["合计"] + [fmt(total[key]) for key, _, fmt in FIGURE_COLUMNS])
    return Block("table", header=[label] + [h for _, h, _ in FIGURE_COLUMNS], rows=rows)


def outline(report: Report, with_charts: bool) -> list[Block]:
    """The report from title to hot spots; chart blocks only when ``with_charts``."""
    s = report.summary
    blocks = [Block("heading", report.title, level=0),
              Block("paragraph", f"统计期间：{report.date_from.isoformat()} 至 {report.date_to.isoformat()}"
                                 f"（评价日期，北京时间）；统计范围：{report.scope_name}；生成日期：{report.today.isoformat()}。"),
              Block("heading", "一、总体情况")]
    blocks += [Block("paragraph", sentence) for sentence in report.sentences()]
    blocks += [Block("heading", "二、分部门情况"), _figure_table("部门", report.by_department, s),
               Block("heading", "三、分渠道情况"), _figure_table("评价渠道", report.by_channel, s)]
    if with_charts and s["total"]:
        blocks.append(Block("chart", chart=0))
    blocks += [Block("heading", "四、分月情况"), _figure_table("月份", report.by_month, s)]
    if with_charts and s["total"]:
        blocks.append(Block("chart", chart=1))
    blocks.append(Block("heading", "五、堵点难点"))
    if report.terms:
        blocks.append(Block("paragraph", "评价内容与评价原因中提及最多的关键词（与上一个等长期间比较）："))
        blocks.append(Block("table", header=["关键词", "提及次数", "其中差评", "差评占比", "上期", "趋势"],
                            rows=[[t["term"], count(t["count"]), count(t["bad"]), percent(t["share_bad"]),
                                   count(t["previous"]), "上升" if t["rising"] else ""] for t in report.terms]))
    else:
        blocks.append(Block("paragraph", "本期评价内容中没有可统计的关键词。"))
    if report.anomalies:
        blocks.append(Block("paragraph", "差评率显著高于自身前8周基线的事项和部门（单侧精确二项检验）："))
        blocks.append(Block("table", header=["类型", "名称", "差评/评价", "差评率", "基线差评率", "p值"],
                            rows=[["事项" if a["kind"] == "item" else "部门", a["name"],
                                   f"{count(a['bad'])}/{count(a['total'])}", percent(a["bad_rate"]),
                                   percent(a["baseline_rate"]), f"{a['p_value']:.2g}"] for a in report.anomalies]))
    else:
        blocks.append(Block("paragraph", "本期没有差评率显著高于自身基线的事项或部门。"))
    return blocks
