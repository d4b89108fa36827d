"""Running one of the measuring scripts (``scripts/bench_*.py``) for a ``make bench`` row."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """``scripts/<name>`` with ``args`` in a fresh process, output captured. The bench's own
    ``HCP_*`` settings are left out: each script builds its app on a database of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCP_")}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True)
