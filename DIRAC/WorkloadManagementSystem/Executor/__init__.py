"""DIRAC's optimizers (executors) of the WorkloadManagement System."""
