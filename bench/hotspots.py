"""The hot spots row of ``make bench``: a year's hot spots from the daily counts vs. a raw recount.

Runs ``scripts/bench_hotspots.py`` (loads N ratings with comments into its own database,
times ``GET /api/v1/insights/hotspots`` for the year and a recount of the same terms from
the raw rows in the same run, checks the two agree, drops the database). N is
``BENCH_HOTSPOTS_RATINGS`` (default 1,000,000: on a shared 2-core machine loading 10 M
takes longer than the rest of the bench; the target is stated for 10 M).
"""
from __future__ import annotations

import os
import re

from bench.scripts import run_script

LINE = re.compile(r"^hotspots, year \((daily counts|raw recount)\)\s+p50\s+([\d.]+) ms\s+p95\s+([\d.]+) ms")


def run(ctx) -> list[dict]:
    ratings = int(os.environ.get("BENCH_HOTSPOTS_RATINGS", "1000000"))
    proc = run_script("bench_hotspots.py", "--ratings", str(ratings))
    found = {}
    for line in proc.stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            found[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    if "daily counts" not in found or "raw recount" not in found:
        return [{"name": "hot spots, year p95", "hcp": "failed", "baseline": (proc.stderr or proc.stdout)[-200:],
                 "target": "p95 < 500", "ok": False}]
    (p50, p95), (raw50, raw95) = found["daily counts"], found["raw recount"]
    return [{"name": f"hot spots, year ({ratings:,} ratings, ⅓ with comments) p50 / p95 ms",
             "hcp": f"{p50:.0f} / {p95:.0f}", "baseline": f"raw recount {raw50:.0f} / {raw95:.0f}",
             "ratio": raw95 / p95 if p95 else None,
             "target": "p95 < 500", "ok": p95 < 500 and proc.returncode == 0}]
