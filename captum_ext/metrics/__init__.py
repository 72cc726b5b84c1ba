"""Metrics for attribution maps."""
