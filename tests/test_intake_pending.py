"""The web process's queue of stored ratings for the worker (service/pending.py):
the ids of many requests go as few batches, none lost, none twice; a broker that is down
costs no request anything."""
from __future__ import annotations

import logging
import threading

from service.pending import PendingQueue
from tests.support import wait_for


class Sent:
    """What the queue handed on, batch by batch (a real callable, as the broker send is)."""

    def __init__(self, fail: bool = False):
        self.batches: list[tuple[list[int], list[int]]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, count_ids, check_ids):
        if self.fail:
            raise ConnectionError("broker down")
        with self.lock:
            self.batches.append((list(count_ids), list(check_ids)))

    def ids(self, which: int) -> list[int]:
        with self.lock:
            return sorted(i for batch in self.batches for i in batch[which])


def test_many_requests_ids_go_as_few_batches_each_once():
    sent = Sent()
    queue = PendingQueue(sent, linger=0.2)

    def request(n: int) -> None:
        for i in range(50):
            rating = n * 1000 + i
            queue.add([rating] if i % 3 == 0 else [], [rating])

    threads = [threading.Thread(target=request, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = sorted(n * 1000 + i for n in range(8) for i in range(50))
    wait_for(lambda: sent.ids(1) == every, message="every checked id sent")
    assert sent.ids(0) == sorted(n * 1000 + i for n in range(8) for i in range(0, 50, 3))
    assert len(sent.batches) < 400 / 10  # batches, not a message per request


def test_a_full_queue_goes_at_once_and_flush_sends_the_rest():
    sent = Sent()
    queue = PendingQueue(sent, linger=3600, size=10)  # only the size or a flush can send
    queue.add([], list(range(10)))
    wait_for(lambda: sent.ids(1) == list(range(10)), message="the full queue sent")
    queue.add([11], [11])
    assert sent.ids(1) == list(range(10))
    queue.flush()  # as at the process's exit
    assert sent.batches[-1] == ([11], [11])


def test_a_broker_down_is_logged_and_the_queue_goes_on(caplog):
    sent = Sent(fail=True)
    queue = PendingQueue(sent, linger=0.05, what="ratings left for the catch-up sweep")
    with caplog.at_level(logging.WARNING, logger="service.pending"):
        queue.add([1], [1, 2])
        wait_for(lambda: "left for the catch-up sweep" in caplog.text, message="the failure logged")
    assert "2 ratings" in caplog.text
    sent.fail = False
    queue.add([3], [3])
    wait_for(lambda: sent.ids(1) == [3], message="sent once the broker is back")
