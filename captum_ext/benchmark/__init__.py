"""The stamp benchmark: every registered method on every registered metric."""
