"""Hot spots (堵点难点, SPEC §10): terms counted as ratings arrive, and the anomalies."""
