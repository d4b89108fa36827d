"""The stored ratings of one web process waiting to be sent to the worker, a few at a time.

Every created rating needs its term counts and the suspicious rules (service/ratings/
after_commit.py). Sent as one ``process_stored`` message per request, that was a broker
publish on each request's path and a task (a transaction, an acknowledgement, a dozen
statements) per rating in the worker: a quarter of the single intake's throughput in
``make bench``. So the requests of one process hand their created ids to this queue, and a
thread of the process sends them as one message per ``linger`` seconds (or per ``size``
ratings, whichever comes first): the worker counts and checks the ratings of a few hundred
requests in one transaction, at most ``linger`` seconds late.

What a queue holds is in memory only. Ratings it never sent (the process killed, the broker
down) are stored and committed all the same, and the catch-up sweep counts and checks them
(``catch_up``), as for a broker down at intake; a process that exits normally sends what it
holds first (``atexit``). Nothing is counted twice either way: the counts claim each rating
once and the marks are unique.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

Send = Callable[[list[int], list[int]], None]


class PendingQueue:
    """One per web process and app: created ids gathered and sent as one batch per ``linger`` seconds."""

    def __init__(self, send: Send, linger: float, size: int = 2000):
        self._send = send
        self.linger = linger
        self.size = size
        self._cond = threading.Condition()
        self._count: list[int] = []
        self._check: list[int] = []
        self._pid: int | None = None  # the process whose thread sends (a fork starts its own)

    def add(self, count_ids: list[int], check_ids: list[int]) -> None:
        """Queue one stored batch's ids; sent within ``linger`` seconds."""
        with self._cond:
            if self._pid != os.getpid():
                self._start()
            was_empty = not self._count and not self._check
            self._count += count_ids
            self._check += check_ids
            if was_empty or self._held() >= self.size:
                self._cond.notify()

    def flush(self) -> None:
        """Send what is queued now (at exit; tests)."""
        with self._cond:
            batch = self._take()
        self._deliver(*batch)

    def _held(self) -> int:
        return max(len(self._count), len(self._check))

    def _take(self) -> tuple[list[int], list[int]]:
        batch = (self._count, self._check)
        self._count, self._check = [], []
        return batch

    def _start(self) -> None:
        # Called with the lock held, in a process that has no sender thread yet (the first
        # rating of this process, or the first after a fork, whose copied lists belong to the parent).
        self._pid = os.getpid()
        self._count, self._check = [], []
        threading.Thread(target=self._run, name="hcp-pending-ratings", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._count and not self._check:
                    self._cond.wait()
                deadline = time.monotonic() + self.linger
                while self._held() < self.size and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                batch = self._take()
            self._deliver(*batch)

    def _deliver(self, count_ids: list[int], check_ids: list[int]) -> None:
        if not count_ids and not check_ids:
            return
        try:
            self._send(count_ids, check_ids)
        except Exception:  # noqa: BLE001 — stored and committed: the catch-up sweep does them
            log.warning("broker unavailable; %d ratings left for the catch-up sweep",
                        len(set(count_ids) | set(check_ids)), exc_info=True)
