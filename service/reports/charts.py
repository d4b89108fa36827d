"""The report's charts as PNG images, drawn by matplotlib with the Chinese font of
``HCP_REPORT_FONT`` (fonts-wqy-microhei by default; nothing is downloaded).

Figures are made with ``matplotlib.figure.Figure`` (no pyplot state), so two reports
drawn at once in one process do not share a canvas. matplotlib is imported when the first
chart is drawn, not with the app: a web process that never writes a report stays ~40 MB
smaller.
"""
from __future__ import annotations

import io
from pathlib import Path

from service.reports.content import Report

GOOD, BAD, LINE = "#3a7bd5", "#d9534f", "#2e7d32"


class FontMissing(RuntimeError):
    """The Chinese font the charts and the PDF need is not on this machine."""


def font_path(path: str) -> str:
    """``path`` if the font file is there; else FontMissing naming the setting."""
    if not Path(path).is_file():
        raise FontMissing(f"Chinese font {path} not found: install fonts-wqy-microhei or set HCP_REPORT_FONT")
    return path


def _figure(font: str, size: tuple[float, float]):
    """A new matplotlib Figure and the FontProperties of ``font``."""
    from matplotlib.figure import Figure  # Figure draws with Agg by itself: no backend is chosen
    from matplotlib.font_manager import FontProperties

    return Figure(figsize=size), FontProperties(fname=font_path(font))


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=150, bbox_inches="tight")
    return out.getvalue()


def monthly(report: Report, font: str) -> bytes:
    """Ratings per month, good and bad stacked, with the good rate and the floor on a second axis."""
    fig, fp = _figure(font, (7.5, 3.6))
    months = [g["key"] for g in report.by_month]
    good = [g["good"] for g in report.by_month]
    bad = [g["bad"] for g in report.by_month]
    ax = fig.add_subplot()
    ax.bar(months, good, color=GOOD, label="好评")
    ax.bar(months, bad, bottom=good, color=BAD, label="差评")
    ax.set_ylabel("评价数（条）", fontproperties=fp)
    ax.set_title("各月评价数与好评率", fontproperties=fp)
    ax.tick_params(axis="x", labelrotation=45)
    rate_ax = ax.twinx()
    rates = [g["good_rate"] * 100 if g["good_rate"] is not None else float("nan") for g in report.by_month]
    rate_ax.plot(months, rates, color=LINE, marker="o", label="好评率")
    rate_ax.axhline(report.floor * 100, color=LINE, linestyle="--", linewidth=0.8)
    rate_ax.set_ylabel("好评率（%）", fontproperties=fp)
    low = min([r for r in rates if r == r] + [report.floor * 100])
    rate_ax.set_ylim(max(0, low - 2), 100.5)
    handles = ax.get_legend_handles_labels()[0] + rate_ax.get_legend_handles_labels()[0]
    ax.legend(handles, ["好评", "差评", "好评率"], prop=fp, loc="lower left", fontsize=8)
    return _png(fig)


def channels(report: Report, font: str) -> bytes:
    """Ratings per channel as horizontal bars, good and bad stacked."""
    groups = list(reversed(report.by_channel))
    fig, fp = _figure(font, (7.5, 0.45 * len(groups) + 1.2))
    labels = [g["label"] for g in groups]
    good = [g["good"] for g in groups]
    bad = [g["bad"] for g in groups]
    ax = fig.add_subplot()
    ax.barh(labels, good, color=GOOD, label="好评")
    ax.barh(labels, bad, left=good, color=BAD, label="差评")
    ax.set_title("各渠道评价数", fontproperties=fp)
    for tick in ax.get_yticklabels():
        tick.set_fontproperties(fp)
    ax.legend(prop=fp, fontsize=8)
    return _png(fig)


def all_charts(report: Report, font: str) -> list[tuple[str, bytes]]:
    """(caption, PNG) of every chart the report shows; none when there is nothing to draw."""
    if not report.summary["total"]:
        return []
    return [("图1 各渠道评价数", channels(report, font)), ("图2 各月评价数与好评率", monthly(report, font))]
