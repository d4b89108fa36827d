"""The bureau's 好差评 work summary (SPEC §10): figures, tables, hot spots and charts of a
period, written as Markdown, Word (.docx) or PDF by ``hcp report`` and ``GET /api/v1/reports``.

``content.gather`` reads everything from the figures' rollups and the hot spots' daily
counts (never the raw ratings); ``charts`` draws the pictures; ``render`` writes the formats.
"""
