"""Handlers that misbehave on purpose, for the hostile-input tests (tests/hostile)."""
