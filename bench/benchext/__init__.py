"""A DIRAC extension used only by the benchmarks: ``dirac-worker Bench --extension benchext``."""
