"""Handlers of the Bench System."""
