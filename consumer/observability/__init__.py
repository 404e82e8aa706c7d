"""Metrics, logs and the health/metrics HTTP endpoint."""
