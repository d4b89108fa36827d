"""Suspicious ratings (疑似刷评 / 恶意差评, SPEC §10).

``rules`` runs the rules on each stored batch (a task sent by name after the intake's commit)
and opens flags; ``decisions`` confirms (excluding the flagged good ratings from every figure,
the rollups adjusted in the same transaction), dismisses and restores them; ``queue`` lists
them for the supervisors in scope. docs/insights.md states the rules.
"""
