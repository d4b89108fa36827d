"""The 上报 rows of ``make bench``: the push draining a backlog against a bare POST loop, and
the outbox's cost on the single intake, measured in the same run.

Runs ``scripts/bench_exchange.py`` (its own database and local receiver). The backlog is
``BENCH_EXCHANGE_BACKLOG`` records (default 20,000, so the bench stays a few minutes on a
shared 2-core machine; the target is stated for 1,000,000).
"""
from __future__ import annotations

import os
import re

from bench.scripts import run_script

DRAIN = re.compile(r"^exchange drain \((hcp push|bare loop)[^)]*\)\s+(\d+) records/s")
CPU = re.compile(r"^cpu per batch \((hcp push|bare loop)\)\s+([\d.]+) ms")
INTAKE = re.compile(r"^intake single \(outbox (on|off)\)\s+([\d.]+) ms/rating")


def run(ctx) -> list[dict]:
    backlog = int(os.environ.get("BENCH_EXCHANGE_BACKLOG", "20000"))
    proc = run_script("bench_exchange.py", "--backlog", str(backlog))
    drain, intake, cpu = {}, {}, {}
    for line in proc.stdout.splitlines():
        if m := DRAIN.match(line.strip()):
            drain[m.group(1)] = float(m.group(2))
        if m := CPU.match(line.strip()):
            cpu[m.group(1)] = float(m.group(2))
        if m := INTAKE.match(line.strip()):
            intake[m.group(1)] = float(m.group(2))
    if len(drain) < 2 or len(intake) < 2:
        return [{"name": "上报 drain records/s", "hcp": "failed", "baseline": (proc.stderr or proc.stdout)[-200:],
                 "target": "≥ 0.5×", "ok": False}]
    ratio = drain["hcp push"] / drain["bare loop"]
    cost = intake["on"] / intake["off"] - 1
    spent = (f"; CPU per batch {cpu['hcp push']:.1f} ms vs {cpu['bare loop']:.1f} ms"
             if len(cpu) == 2 else "")
    return [
        {"name": f"上报 drain records/s ({backlog:,} backlog, 100/batch, 4 sender threads)",
         "hcp": f"{drain['hcp push']:.0f}", "baseline": f"bare POST loop {drain['bare loop']:.0f}{spent}",
         "ratio": ratio, "target": "≥ 0.5×", "ok": ratio >= 0.5 and proc.returncode == 0},
        {"name": "single intake ms/rating, outbox on vs off", "hcp": f"{intake['on']:.2f}",
         "baseline": f"off {intake['off']:.2f}", "ratio": intake["off"] / intake["on"],
         "target": "cost ≤ 10 %", "ok": cost <= 0.10},
    ]
