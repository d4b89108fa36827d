"""Group commit: the single ratings that concurrent requests of one web process are
storing at the same moment share one INSERT.

Under load most of a rating's cost in PostgreSQL is the statement and the commit around
it, not the row. So while one request's INSERT is on its way, the requests of the same
process that reach the insert queue their rows; when it returns, the first of them takes
the whole queue to PostgreSQL as one statement (the unnest form of
``service.ratings.intake``), committed at once since the intake runs in autocommit. No
request waits for company: the first of an idle process goes alone, at once.

Each request still gets its own answer, and only after its row is committed:

- a ``client_id`` already queued by another request is left to that one; the later
  request finds the row afterwards and is judged a replay or a conflict, as it would be
  had it come a moment later;
- if a group's statement fails, every request of the group inserts its own row again,
  alone, on its own connection — one bad row costs no other rating its 201, and a
  database that is down still answers each request 503 (the request whose connection
  broke under the group's statement answers so at once).
"""
from __future__ import annotations

import threading
from typing import Callable

from sqlalchemy.engine import Connection

Insert = Callable[[Connection, list[dict]], dict]


class _Request:
    __slots__ = ("row", "ready", "lead", "created", "failed")

    def __init__(self, row: dict):
        self.row = row
        self.ready = threading.Event()
        self.lead = False  # woken to take the queue to the database
        self.created: dict = {}
        self.failed = False  # the group's statement failed: insert alone


class InsertGroup:
    """One per process and database: queues single rows while an INSERT is in flight."""

    def __init__(self, insert: Insert):
        self._insert = insert
        self._lock = threading.Lock()
        self._queue: list[_Request] = []
        self._busy = False

    def insert_one(self, conn: Connection, row: dict) -> dict:
        """Insert ``row`` (alone or with others); the created row by client_id, as ``insert`` gives it."""
        me = _Request(row)
        with self._lock:
            if self._busy:
                self._queue.append(me)
            else:
                self._busy = me.lead = True
        if not me.lead:
            me.ready.wait()
        error = self._lead(conn, me) if me.lead else None
        if me.failed:
            if getattr(error, "connection_invalidated", False):
                raise error  # this connection is gone: the request fails as it would alone
            return self._insert(conn, [row])
        return me.created

    def waiting(self) -> int:
        """How many rows are queued behind the statement in flight."""
        with self._lock:
            return len(self._queue)

    def _lead(self, conn: Connection, me: _Request) -> Exception | None:
        """Send the queue (``me`` first) as one INSERT; the error if it failed for a group."""
        with self._lock:
            group, self._queue = [me, *self._queue], []
        owner: dict[str, _Request] = {}
        for request in group:
            owner.setdefault(request.row["client_id"], request)  # the first to queue a client_id inserts it
        try:
            rows = sorted((r.row for r in owner.values()), key=lambda row: row["client_id"])
            created = self._insert(conn, rows)
            for cid, request in owner.items():
                if cid in created:
                    request.created = {cid: created[cid]}
            return None
        except BaseException as err:
            for request in group:
                request.failed = True
            if len(group) == 1 or not isinstance(err, Exception):
                raise  # alone, the error is this request's own; an exit is nobody's to swallow
            return err
        finally:
            # Whatever happened, nobody of this group or queued behind it waits forever.
            self._pass_on()
            for request in group[1:]:
                request.ready.set()

    def _pass_on(self) -> None:
        """Wake the first request that queued meanwhile to lead the next group, or go idle."""
        with self._lock:
            nxt = self._queue.pop(0) if self._queue else None
            if nxt is None:
                self._busy = False
        if nxt is not None:
            nxt.lead = True
            nxt.ready.set()
