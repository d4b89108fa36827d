"""Fuzz tests: schemathesis against /api/v1/openapi.json (``make fuzz``).

Selected only with ``-m fuzz``; the everyday ``make test`` leaves them out.
"""
from __future__ import annotations

from pathlib import Path

from tests import support

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    support.opt_in_directory(config, items, HERE, "fuzz", "fuzz")


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: schemathesis over the OpenAPI document (make fuzz)")
