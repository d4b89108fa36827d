"""Fuzz tests: schemathesis against /api/v1/openapi.json (``make fuzz``).

Selected only with ``-m fuzz``; the everyday ``make test`` leaves them out.
"""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    expr = config.option.markexpr or ""
    selected = "fuzz" in expr and "not fuzz" not in expr
    for item in items:
        if Path(str(item.fspath)).resolve().parent != HERE:
            continue
        item.add_marker(pytest.mark.fuzz)
        item.add_marker(pytest.mark.postgres_only)
        if not selected:
            item.add_marker(pytest.mark.skip(reason="fuzz test: run with `make fuzz` (-m fuzz)"))


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: schemathesis over the OpenAPI document (make fuzz)")
