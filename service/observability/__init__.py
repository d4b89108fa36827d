"""Observability: Prometheus metrics (``/metrics``) and JSON logs carrying a request id."""
