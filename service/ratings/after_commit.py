"""What every newly stored batch of ratings starts once it is committed, whichever door it
came in by (device API, the citizen's page, the exchange's inbound): routing of the bad
ones, the hot spots' term counts and the suspicious-rating rules. One list, so a new door
cannot forget one of them."""
from __future__ import annotations

from service.insights import counting
from service.ratings.intake import Outcome, route_created
from service.suspicious import rules


def send_tasks(outcomes: list[Outcome], bodies: list, request_id: str | None = None) -> None:
    """Send the tasks of a committed batch; ``bodies`` are the stored bodies, in order.

    Each sender catches a broker that is down (its sweep or rebuild catches up later), so
    this never fails a rating that is stored.
    """
    route_created(outcomes, request_id)
    counting.send_stored(outcomes, bodies)
    rules.send_stored(outcomes)
