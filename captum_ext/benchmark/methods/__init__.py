"""Benchmark method and metric registrations: every module here is imported by the registry.

Add a module (e.g. ``neflag.py``) that calls ``register_method`` / ``register_metric``; no other
file needs to change.
"""
