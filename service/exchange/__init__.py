"""Exchange with the provincial/national platform and the 12345 hotline (SPEC §8, docs/exchange.md)."""
