"""The figures rows of ``make bench``: summary and by-department breakdown for a year, and
case search by phone and by 办件编号 on the same loaded database.

Runs ``scripts/bench_figures.py`` (the figures' own loader and timer: COPY-loads N
synthetic ratings into its own database, times the stats API, checks the summary against
counting the raw rows, drops the database) and turns its two required lines into rows.
N is ``BENCH_FIGURES_RATINGS`` (default 10,000,000, as the target is stated for; loading
takes minutes — set e.g. 1000000 for a quick run).
"""
from __future__ import annotations

import os
import re

from bench.scripts import run_script

LINE = re.compile(r"^(summary, year|breakdown by department, year|case search by phone|case search by 办件编号"
                  r"|yearly report, pdf)"
                  r"\s+p50\s+([\d.]+) ms\s+p95\s+([\d.]+) ms")
# ms p95; the figures' is 300
TARGETS = {"case search by phone": 100, "case search by 办件编号": 100, "yearly report, pdf": 30000}
BASELINES = {"case search by phone": "finds its one case", "case search by 办件编号": "finds its one case",
             "yearly report, pdf": "a PDF of the summary's numbers"}


def run(ctx) -> list[dict]:
    ratings = int(os.environ.get("BENCH_FIGURES_RATINGS", "10000000"))
    proc = run_script("bench_figures.py", "--ratings", str(ratings))
    rows = []
    for line in proc.stdout.splitlines():
        found = LINE.match(line.strip())
        if found:
            label, p50, p95 = found.group(1), float(found.group(2)), float(found.group(3))
            target = TARGETS.get(label, 300)
            plain = label in TARGETS
            rows.append({"name": f"{'' if plain else 'figures '}{label} ({ratings:,} ratings) p50 / p95 ms",
                         "hcp": f"{p50:.0f} / {p95:.0f}",
                         "baseline": BASELINES.get(label, "equals raw count") if proc.returncode == 0 else "",
                         "target": f"p95 < {target}", "ok": p95 < target and proc.returncode == 0})
    if not rows:
        rows.append({"name": "figures summary / breakdown p95", "hcp": "failed",
                     "baseline": (proc.stderr or proc.stdout)[-200:], "target": "p95 < 300", "ok": False})
    return rows
