# ruff: noqa: E501  (generated: one line per known failure)
"""Public-API walk cases that still fail on main: what fails, the file, the owner.

Generated from a run of tests/test_public_api_walk.py on branch `conformance` and triaged after
the merge (branch `triage`): every case that now passes was deleted; what is left is in
captum_ext/data/ and the CLI, which other helpers are changing (owner: the lead). Each is
``xfail(strict=True)``: when the fix lands the case passes, the strict xfail turns red, and
its line here is deleted."""

KNOWN: dict = {}
