"""What the report says: one ``Report`` of plain values, gathered from the domain's figures.

Every number is the one the stats API gives for the same period and scope
(``service.stats.figures``), the months under the satisfaction floor are judged by
``service.stats.floor.under_floor`` as the floor alert is, and the hot spots are
``service.insights.hotspots`` — the report adds words, not rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask import current_app
from sqlalchemy.orm import Session

from models.clock import local_date
from models.types import utcnow
from service.insights import hotspots
from service.stats import figures, floor

TOP_TERMS = 10


@dataclass
class Report:
    """A period's figures and the tables, lists and sentences written from them."""

    title: str
    scope_name: str
    date_from: date
    date_to: date
    today: date
    summary: dict
    by_department: list[dict]
    by_channel: list[dict]
    by_month: list[dict]
    floor: float
    under_floor: list[dict] = field(default_factory=list)
    terms: list[dict] = field(default_factory=list)
    anomalies: list[dict] = field(default_factory=list)

    @property
    def period_word(self) -> str:
        """全年 for a whole calendar year, else 本期."""
        whole_year = (self.date_from.year == self.date_to.year and (self.date_from.month, self.date_from.day) == (1, 1)
                      and (self.date_to.month, self.date_to.day) == (12, 31))
        return "全年" if whole_year else "本期"

    def sentences(self) -> list[str]:
        """The 总体情况 paragraph, one sentence per item."""
        s = self.summary
        out = [f"{self.period_word}共收到评价{count(s['total'])}条，"
               f"其中好评{count(s['good'])}条、差评{count(s['bad'])}条，好评率{percent(s['good_rate'])}；差评处置率{percent(s['disposal_rate'])}、"
               f"整改率{percent(s['rectification_rate'])}。"]
        out.append(f"实名差评回访率{percent(s['callback_rate'])}，按期办结率{percent(s['on_time_rate'])}，"
                   f"回访整改满意率{percent(s['feedback_satisfaction_rate'])}；经批准延期办理{count(s['extended'])}件。")
        out.append(f"截至{self.today.isoformat()}，本期差评尚未办结{count(s['open'])}件，其中超期{count(s['overdue_open'])}件；"
                   f"红牌预警{count(s['red'])}件、黄牌预警{count(s['yellow'])}件。")
        if self.under_floor:
            months = "、".join(f"{m['key']}（{percent(m['good_rate'])}）" for m in self.under_floor)
            out.append(f"好评率低于{percent(self.floor)}的月份：{months}。")
        else:
            out.append(f"各月好评率均不低于{percent(self.floor)}。")
        return out


def count(n: int | None) -> str:
    """A count as the report writes it: 64,339."""
    return f"{n or 0:,}"


def percent(rate: float | None) -> str:
    """A rate as the report writes it: 100%, 99.5%, 99.87%; — when there is nothing to divide by."""
    if rate is None:
        return "—"
    return f"{rate * 100:.2f}".rstrip("0").rstrip(".") + "%"


def gather(session: Session, f: figures.Filters, scope_name: str, today: date | None = None) -> Report:
    """The report of the ratings ``f`` selects; ``scope_name`` names the department (or 全部部门)."""
    today = today or local_date(utcnow())
    settings = current_app.config["HCP_SETTINGS"]
    summary = figures.summary(session, f, today)
    by_month = figures.breakdown(session, f, "month", today)["groups"]
    by_month.sort(key=lambda g: g["key"])
    under = [g for g in by_month if floor.under_floor(g["good"], g["total"], settings.satisfaction_floor,
                                                      settings.satisfaction_min_ratings)]
    spots = hotspots.hotspots(session, hotspots.Scope(f.date_from, f.date_to, f.department_path, f.item_id))
    return Report(
        title=f"{scope_name}好差评工作情况报告", scope_name=scope_name, date_from=f.date_from, date_to=f.date_to,
        today=today, summary=summary,
        by_department=figures.breakdown(session, f, "department", today)["groups"],
        by_channel=figures.breakdown(session, f, "channel", today)["groups"],
        by_month=by_month, floor=settings.satisfaction_floor, under_floor=under,
        terms=spots["terms"][:TOP_TERMS], anomalies=spots["anomalies"])
