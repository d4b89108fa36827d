#!/usr/bin/env python3
"""Measure the case export on N cases: time and the exporting process's peak RSS.

    .venv/bin/python scripts/bench_case_export.py --cases 1000000

Loads N bad ratings, one case each (scripts/load_ratings.py --all-bad), into a database of
its own, then for CSV and xlsx runs ``GET /api/v1/cases/export`` in a fresh process (the
Flask app, a manager's token), reads the streamed body to the end, counts its rows and
reports the seconds taken and that process's peak RSS; drops the database (``--keep``
keeps it).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load_ratings  # noqa: E402


def measure(database: str, fmt: str) -> dict:
    """In this (fresh) process: export every case and read the stream; the figures as a dict."""
    from sqlalchemy import select

    from models import User
    from service.auth.access import issue_token
    from service.extensions import db

    app = load_ratings.make_app(database)
    with app.app_context():
        token, _ = issue_token(db.session.scalar(select(User).where(User.username == "bench-manager")))
        db.session.commit()
    started = time.perf_counter()
    resp = app.test_client().get("/api/v1/cases/export", query_string={"format": fmt},
                                 headers={"Authorization": f"Bearer {token}"}, buffered=False)
    assert resp.status_code == 200, resp.status_code
    size, tail, lines = 0, b"", 0
    # the xlsx is read back afterwards to count its rows: kept on disk, so the bench's own copy
    # of the file (85 MB at a million cases) is not counted as the export's memory
    spool = tempfile.TemporaryFile() if fmt == "xlsx" else None
    for piece in resp.response:
        size += len(piece)
        if spool is not None:
            spool.write(piece)
        else:
            lines += piece.count(b"\n")
            tail = piece[-1:] or tail
    resp.close()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = lines - 1 if spool is None else None
    if spool is not None:  # counted after the peak is taken: loading the file is not the export
        from openpyxl import load_workbook
        spool.seek(0)
        rows = sum(1 for _ in load_workbook(spool, read_only=True).active.iter_rows(values_only=True)) - 1
    return {"format": fmt, "rows": rows, "bytes": size, "seconds": seconds, "peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="hcp_bench_export")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="measure an already loaded database")
    parser.add_argument("--measure", metavar="FORMAT", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if not args.database.startswith("hcp_bench"):
        parser.error("the database name must start with hcp_bench")
    if args.measure:
        print(json.dumps(measure(args.database, args.measure)))
        return
    try:
        if not args.reuse:
            load_ratings.load(args.database, args.cases, seed=2, weights=load_ratings.ALL_BAD)
        for fmt in args.formats.split(","):
            child = subprocess.run([sys.executable, __file__, "--database", args.database, "--measure", fmt],
                                   capture_output=True, text=True)
            if child.returncode != 0:
                print(child.stderr[-2000:], file=sys.stderr)
                raise SystemExit(1)
            r = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"case export {fmt:4s} rows {r['rows']}  {r['bytes'] / 1e6:.0f} MB in {r['seconds']:.0f} s  "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB   (target < 300 MB)")
    finally:
        if not args.keep:
            load_ratings.drop(args.database)
            print(f"dropped {args.database}")


if __name__ == "__main__":
    main()
