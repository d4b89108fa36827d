"""Fault tests: hcp's own processes stopped, started and killed under real load.

They run only when selected with ``-m faults`` (``make faults``): each takes a minute
or so and starts a whole deployment of its own, so the everyday ``make test`` leaves
them out. They need PostgreSQL and redis-server.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import support
from tests.stack import Stack

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    support.opt_in_directory(config, items, HERE, "faults", "faults")


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: stops/kills hcp's services under load (make faults)")


@pytest.fixture
def redis(tmp_path):
    """A Redis server of this test's own: the broker it will stop and start."""
    server = support.RedisServer(tmp_path / "redis-data")
    server.workdir.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack_factory(tmp_path):
    """Make a Stack (stopped and its database dropped at teardown)."""
    made = []

    def make(redis, **kwargs) -> Stack:
        var = tmp_path / f"var{len(made)}"
        var.mkdir()
        stack = Stack(var, redis, **kwargs)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()
        if os.environ.get("HCP_FAULT_KEEP_LOGS"):
            print(f"logs of {stack.workdir} kept")


@pytest.fixture
def fault_platform():
    """The fake provincial platform the 上报 fault tests push to (load.PushRun)."""
    from tests.fake_platform import FakePlatform

    platform = FakePlatform(token="fault-token")
    yield platform
    platform.stop()
