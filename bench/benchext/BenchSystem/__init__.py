"""The Bench System: services the benchmarks call."""
