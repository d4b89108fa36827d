"""Work a web process hands to the worker a few at a time: ids gathered from many requests
and sent as one message per ``linger`` seconds by a thread of the process.

A broker publish (or a Redis call deciding whether one is needed) on each request's path
costs every request; gathered, it costs one message per ``linger`` seconds, at most that late.
Two queues use it: the stored ratings' term counts and rules (service/ratings/after_commit.py:
one ``process_stored`` task counts and checks the ratings of a few hundred requests in one
transaction) and the invitations' SMS (service/invitations/issue.py: one batch send).

What a queue holds is in memory only. Ids it never sent (the process killed, the broker
down) belong to rows stored and committed all the same, and a sweep finds them (the ratings'
catch-up, the SMS never tried), as for a broker down at the request; a process that exits
normally sends what it holds first (``atexit``). Each user makes its work safe to do twice.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Callable

from flask import current_app

log = logging.getLogger(__name__)

Send = Callable[..., None]  # one list of ids per part


class PendingQueue:
    """One per web process, app and use: ids in ``parts`` lists (the ratings: to count, to
    check), gathered and sent as one call of ``send`` per ``linger`` seconds (or per ``size``
    ids in a part); ``what`` names them in the warning when a send fails."""

    def __init__(self, send: Send, linger: float, size: int = 2000, parts: int = 2,
                 what: str = "ids left for a sweep"):
        self._send = send
        self.linger = linger
        self.size = size
        self.what = what
        self._cond = threading.Condition()
        self._parts: list[list[int]] = [[] for _ in range(parts)]
        self._pid: int | None = None  # the process whose thread sends (a fork starts its own)

    def add(self, *ids: list[int]) -> None:
        """Queue one request's ids, a list per part; sent within ``linger`` seconds."""
        with self._cond:
            if self._pid != os.getpid():
                self._start()
            was_empty = not any(self._parts)
            for part, more in zip(self._parts, ids):
                part += more
            if was_empty or self._held() >= self.size:
                self._cond.notify()

    def flush(self) -> None:
        """Send what is queued now (at exit; tests)."""
        with self._cond:
            batch = self._take()
        self._deliver(*batch)

    def _held(self) -> int:
        return max(map(len, self._parts))

    def _take(self) -> list[list[int]]:
        batch, self._parts = self._parts, [[] for _ in self._parts]
        return batch

    def _start(self) -> None:
        # Called with the lock held, in a process that has no sender thread yet (the first
        # rating of this process, or the first after a fork, whose copied lists belong to the parent).
        self._pid = os.getpid()
        self._take()
        threading.Thread(target=self._run, name="hcp-pending", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not any(self._parts):
                    self._cond.wait()
                deadline = time.monotonic() + self.linger
                while self._held() < self.size and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                batch = self._take()
            self._deliver(*batch)

    def _deliver(self, *parts: list[int]) -> None:
        _deliver(self._send, parts, self.what)


def _deliver(send: Send, parts: tuple[list[int], ...], what: str) -> None:
    if not any(parts):
        return
    try:
        send(*parts)
    except Exception:  # noqa: BLE001 — stored and committed: a sweep does them
        log.warning("broker unavailable; %d %s", len(set().union(*parts)), what, exc_info=True)


def hand_on(name: str, send: Send, *ids: list[int], what: str) -> None:
    """Give ``ids`` (a list per part) to this process's queue ``name`` for the current app: it
    calls ``send(*ids)`` of many requests at once, in the app's context, within
    HCP_AFTER_COMMIT_LINGER_SECONDS (0: here and now). A send that fails is logged as
    ``what`` ("… left for the catch-up sweep"), never raised: the rows are committed and a
    sweep does them."""
    app = current_app._get_current_object()
    queue = app.extensions.get(name)
    if queue is None:
        linger = app.config["HCP_SETTINGS"].after_commit_linger_seconds
        if linger <= 0:
            _deliver(send, ids, what)
            return

        def in_app(*parts: list[int]) -> None:
            with app.app_context():  # the queue's thread has none of its own
                send(*parts)

        queue = app.extensions.setdefault(name, PendingQueue(in_app, linger, parts=len(ids), what=what))
    queue.add(*ids)
