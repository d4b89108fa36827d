"""The case export row of ``make bench``: 1,000,000 cases exported with a bounded peak RSS.

Runs ``scripts/bench_case_export.py`` (loads ``BENCH_EXPORT_CASES`` bad ratings, one case
each, into a database of its own, exports them as CSV and xlsx in a fresh process each,
drops the database) and turns its lines into rows. Set e.g. ``BENCH_EXPORT_CASES=100000``
for a quick run.
"""
from __future__ import annotations

import os
import re

from bench.scripts import run_script

LINE = re.compile(r"^case export (\w+)\s+rows (\d+)\s+(\d+) MB in (\d+) s\s+peak RSS (\d+) MB")
TARGET_MB = 300


def run(ctx) -> list[dict]:
    cases = int(os.environ.get("BENCH_EXPORT_CASES", "1000000"))
    proc = run_script("bench_case_export.py", "--cases", str(cases))
    rows = []
    for line in proc.stdout.splitlines():
        found = LINE.match(line.strip())
        if found:
            fmt, n, mb, seconds, peak = found.groups()
            rows.append({"name": f"case export {fmt} ({int(n):,} cases) peak RSS MB", "hcp": peak,
                         "baseline": f"{mb} MB in {seconds} s", "target": f"< {TARGET_MB}",
                         "ok": int(peak) < TARGET_MB and int(n) == cases and proc.returncode == 0})
    if not rows:
        rows.append({"name": "case export peak RSS", "hcp": "failed", "baseline": (proc.stderr or proc.stdout)[-200:],
                     "target": f"< {TARGET_MB} MB", "ok": False})
    return rows
