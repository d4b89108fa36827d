"""The figures every fault test prints and judges: sent, stored, cases, duplicates, lost."""
from __future__ import annotations

from sqlalchemy import text


def count(app, client_ids: list[str]) -> dict:
    """What the database holds for the ratings a test sent (and anything else it holds)."""
    from service.extensions import db

    sent = set(client_ids)
    with app.app_context():
        s = db.session
        rows = s.execute(text("SELECT client_id, negative FROM ratings")).all()
        per_client = {}
        for cid, _ in rows:
            per_client[cid] = per_client.get(cid, 0) + 1
        bad_ids = {cid for cid, negative in rows if negative}
        cases = s.execute(text(
            "SELECT r.client_id, count(*) FROM cases c JOIN ratings r ON r.id = c.rating_id "
            "GROUP BY r.client_id")).all()
        routed = dict(cases)
        route_events = s.execute(text(
            "SELECT count(*) FROM (SELECT case_id FROM case_history WHERE action = 'route' "
            "GROUP BY case_id HAVING count(*) > 1) x")).scalar()
        cases_of_good = s.execute(text(
            "SELECT count(*) FROM cases c JOIN ratings r ON r.id = c.rating_id WHERE NOT r.negative")).scalar()
        cases_without_history = s.execute(text(
            "SELECT count(*) FROM cases c WHERE NOT EXISTS "
            "(SELECT 1 FROM case_history h WHERE h.case_id = c.id)")).scalar()
        db.session.rollback()
    return {
        "sent": len(sent),
        "stored": sum(1 for cid in per_client if cid in sent),
        "stranger_rows": sum(1 for cid in per_client if cid not in sent),
        "duplicate_ratings": sum(n - 1 for n in per_client.values() if n > 1),
        "lost": len(sent - set(per_client)),
        "bad": len(bad_ids),
        "cases": sum(routed.values()),
        "duplicate_cases": sum(n - 1 for n in routed.values() if n > 1) + route_events,
        "bad_without_case": len(bad_ids - set(routed)),
        "cases_of_good": cases_of_good,
        "cases_without_history": cases_without_history,
    }


def bad_routed(app) -> tuple[int, int]:
    """(bad ratings, of them with a case) — polled while waiting for routing to finish."""
    from service.extensions import db

    with app.app_context():
        row = db.session.execute(text(
            "SELECT count(*), count(c.id) FROM ratings r LEFT JOIN cases c ON c.rating_id = r.id "
            "WHERE r.negative")).one()
        db.session.rollback()
    return row[0], row[1]


def unrouted_detail(app, limit: int = 20) -> list[tuple]:
    """The first bad ratings still without a case, with their resend state — printed when a
    test times out waiting for routing, so a failed run says where routing stopped."""
    from service.extensions import db

    with app.app_context():
        rows = db.session.execute(text(
            "SELECT r.id, r.received_at, rr.attempts, rr.next_at, now() FROM ratings r "
            "LEFT JOIN cases c ON c.rating_id = r.id LEFT JOIN route_resends rr ON rr.rating_id = r.id "
            "WHERE r.negative AND c.id IS NULL ORDER BY r.id LIMIT :n"), {"n": limit}).all()
        db.session.rollback()
    return [tuple(row) for row in rows]


def report(name: str, figures: dict, **extra) -> None:
    """Print one line of figures (``make faults`` runs pytest with -s, so they show)."""
    parts = " ".join(f"{k}={v}" for k, v in {**figures, **extra}.items())
    print(f"\nFIGURES {name}: {parts}", flush=True)


def assert_nothing_lost(figures: dict) -> None:
    assert figures["lost"] == 0, figures
    assert figures["stored"] == figures["sent"], figures
    assert figures["duplicate_ratings"] == 0, figures
    assert figures["stranger_rows"] == 0, figures
    assert figures["duplicate_cases"] == 0, figures
    assert figures["bad_without_case"] == 0, figures
    assert figures["cases"] == figures["bad"], figures
    assert figures["cases_of_good"] == 0, figures
    assert figures["cases_without_history"] == 0, figures
