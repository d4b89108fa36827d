"""Reason codes (评价指标 / 差评原因, SPEC §7): the active table, its import, and checking
a rating's ``reasons`` against it."""
