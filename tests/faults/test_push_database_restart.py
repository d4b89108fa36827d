"""PostgreSQL restarted in the middle of a push (SPEC §8, issue 14).

The database is a PostgreSQL cluster of this test's own (initdb into a temp dir), never
the system one. A whole deployment pushes to the fake platform while kiosks stream
``HCP_FAULT_PUSH_RATINGS`` ratings (default 3,000) (load.PushRun). Twice — a clean restart
(``fast``), then a crash (``immediate``) — the platform holds its next answers (it has
recorded the batch), and PostgreSQL is stopped while a push waits on one, kept down for
``DOWN`` seconds and started again. The push's transaction dies with the server: its row
locks go, its settle fails, and the batch is sent again under the same record ids. The
kiosks meet 503s meanwhile and post again. Afterwards every stored rating must be at the
platform — none lost — and the duplicates (records the platform had already, which it
drops by record id) are counted.
"""
from __future__ import annotations

import os

from tests import support
from tests.faults import load
from tests.faults.test_push_worker_kill import hold_answers, release_answers
from tests.stack import PostgresServer, wait_quiet

RATINGS = int(os.environ.get("HCP_FAULT_PUSH_RATINGS", "3000"))
DOWN = 3  # seconds; short, the restart is the fault


def test_postgres_restarted_mid_push_loses_nothing(redis, stack_factory, fault_platform):
    platform = fault_platform
    pg = PostgresServer()
    pg.init()
    pg.start()
    try:
        run = load.PushRun(stack_factory, redis, platform, RATINGS, clients=4, per_second=60,
                           database_url=pg.create_database("hcp"))
        support.wait_for(lambda: len(platform.received) > 0, timeout=120, message="the first records pushed")
        restarts = []
        for mode in ("fast", "immediate"):
            hold_answers(platform)
            at_platform = len(platform.received)
            pg.stop(mode)
            release_answers(platform)
            wait_quiet(DOWN)
            pg.start()
            restarts.append(mode)
            support.wait_for(lambda: len(platform.received) > at_platform or run.progress[0] >= RATINGS,
                             timeout=120, message="the push to go on after the restart")
        figs = run.finish("push_database_restart", restarts="+".join(restarts), down_s=DOWN,
                          answered_503=run.tally.retries[503], connection_errors=run.tally.retries["connection"])
        assert restarts == ["fast", "immediate"]
        assert run.tally.retries[503] > 0, "the intake never met the restart"
        assert figs["unexpected"] == 0, run.tally.unexpected[:10]
    finally:
        pg.destroy()
