"""The Optimizers System: ``dirac-worker Optimizers`` optimizes submitted jobs."""
