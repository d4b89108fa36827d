"""Kiosk retry storm: the same 1,000 ratings posted by 16 concurrent clients.

Eight clients post them one by one and eight in batches of 50, each in its own order,
as kiosks flushing the same offline buffer after a network split would. Each rating
must be stored once, answered 201 (or ``created``) exactly once in all, and every other
answer must be the replay of that first answer: the same id, level and received_at.
"""
from __future__ import annotations

import random
import threading
from collections import defaultdict

import requests

from tests import support
from tests.faults import figures, load

RATINGS = 1000
CLIENTS = 16
BATCH = 50


def test_same_ratings_from_16_clients_are_stored_once(redis, stack_factory):
    stack = stack_factory(redis)
    app, key, _ = stack.hall()
    stack.start_web(workers=2, threads=8)
    stack.start_worker("w1", concurrency=2)
    stack.start_beat()

    items = load.bodies(RATINGS, bad_every=10, real_name_every=5)
    answers = defaultdict(list)  # client_id -> [(how, status, id, received_at)]
    problems = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)

    def kiosk(n: int):
        http = requests.Session()
        headers = support.bearer(key)
        order = items[:]
        random.Random(n).shuffle(order)
        barrier.wait()
        if n % 2:
            for body in order:
                r = http.post(stack.web.url + "/api/v1/ratings", json=body, headers=headers, timeout=30)
                data = r.json()
                with lock:
                    if r.status_code not in (200, 201):
                        problems.append((body["client_id"], r.status_code, data))
                        continue
                    status = "created" if r.status_code == 201 else "duplicate"
                    answers[body["client_id"]].append(("single", status, data["id"], data["received_at"]))
        else:
            for start in range(0, RATINGS, BATCH):
                r = http.post(stack.web.url + "/api/v1/ratings/batch",
                              json={"ratings": order[start:start + BATCH]}, headers=headers, timeout=60)
                if r.status_code != 200:
                    with lock:
                        problems.append(("batch", r.status_code, r.text[:200]))
                    continue
                with lock:
                    for res in r.json()["results"]:
                        if res["status"] not in ("created", "duplicate"):
                            problems.append((res["client_id"], res["status"], res))
                            continue
                        answers[res["client_id"]].append(("batch", res["status"], res["id"], None))

    threads = [threading.Thread(target=kiosk, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads)

    created_twice = sum(1 for got in answers.values() if sum(s == "created" for _, s, _, _ in got) > 1)
    never_created = sum(1 for got in answers.values() if not any(s == "created" for _, s, _, _ in got))
    inconsistent = sum(1 for got in answers.values()
                       if len({i for _, _, i, _ in got}) > 1 or len({r for _, _, _, r in got if r}) > 1)
    support.wait_for(lambda: (lambda b, r: b == r)(*figures.bad_routed(app)), timeout=120,
                     message="every bad rating to have its case")
    figs = figures.count(app, [b["client_id"] for b in items])
    figures.report("retry_storm", figs, requests=(CLIENTS // 2) * (RATINGS + RATINGS // BATCH),
                   answers=sum(len(v) for v in answers.values()), created_twice=created_twice,
                   never_created=never_created, inconsistent_answers=inconsistent, problems=len(problems))

    assert problems == [], problems[:10]
    assert len(answers) == RATINGS and all(len(got) == CLIENTS for got in answers.values())
    assert created_twice == 0 and never_created == 0 and inconsistent == 0
    figures.assert_nothing_lost(figs)
