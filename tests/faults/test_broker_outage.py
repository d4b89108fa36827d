"""Redis, the broker, stopped for 30 s in the middle of a steady stream of ratings.

The promise (SPEC §2, "one case per bad rating … also when the broker was down"): every
rating is answered 201 and stored once while the broker is away — the intake stores
first and only then publishes, and a failed publish is caught — and once Redis is back
the beat sweep resends the bad ratings that never reached a worker, so each gets exactly
one case. Redis restarts empty (no persistence), so messages queued before the outage
are gone too: the sweep has to find those as well.
"""
from __future__ import annotations

import os
import time

from tests import support
from tests.faults import figures, load
from tests.stack import wait_quiet

RATINGS = int(os.environ.get("HCP_FAULT_RATINGS", "10000"))
OUTAGE_SECONDS = float(os.environ.get("HCP_FAULT_OUTAGE_SECONDS", "30"))
PER_SECOND = 180  # the stream outlasts the outage on either side
ROUTED_WITHIN = 120  # seconds after Redis returns


def test_broker_down_for_30s_loses_nothing(redis, stack_factory):
    stack = stack_factory(redis)
    app, key, _ = stack.hall(handlers=2)
    stack.start_web(workers=2, threads=8)
    stack.start_worker("w1", concurrency=2)
    stack.start_beat()

    items = load.bodies(RATINGS, bad_every=33)  # ~3 % bad
    progress = [0]
    sender = load.start(load.stream, stack.web.url, key, items, clients=12,
                        per_second=PER_SECOND, timeout=20, progress=progress)

    support.wait_for(lambda: progress[0] >= RATINGS // 5, timeout=300, message="a fifth of the stream")
    redis.stop()
    stopped_at = progress[0]
    wait_quiet(OUTAGE_SECONDS)
    redis.start()
    back_at = progress[0]
    back = time.monotonic()

    sender.join(timeout=600)
    assert not sender.is_alive(), "the stream did not finish"
    tally = sender.box["result"]
    try:
        routed = support.wait_for(lambda: (lambda b, r: b == r and b)(*figures.bad_routed(app)),
                                  timeout=ROUTED_WITHIN, message="every bad rating to have its case")
    except AssertionError:  # say where routing stopped: what is unrouted, and what the processes last said
        print("unrouted (id, received_at, resends, next resend, now):", figures.unrouted_detail(app))
        for log in sorted(stack.workdir.glob("*.log")):
            print(f"--- last lines of {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
        raise
    all_routed_after = time.monotonic() - back

    figs = figures.count(app, [b["client_id"] for b in items])
    figures.report("broker_outage", figs, answered=tally.answered(), unexpected=len(tally.unexpected),
                   hangs=tally.hangs, sent_while_down=back_at - stopped_at,
                   outage_s=OUTAGE_SECONDS, routed_s_after_return=round(all_routed_after, 1),
                   retries=dict(tally.retries), latency=tally.latency())
    assert back_at - stopped_at > 0, "no rating was sent while the broker was down"
    assert tally.unexpected == [] and tally.hangs == 0, tally.unexpected[:10]
    assert tally.answered() == RATINGS
    assert all(tally.final(b["client_id"])[0] in (200, 201) for b in items)
    assert routed == figs["bad"]
    figures.assert_nothing_lost(figs)
