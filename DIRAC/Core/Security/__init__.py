"""Security helpers: DIRAC's group properties (identity itself is workers/identity.py)."""
