"""Databases of the WorkloadManagement System."""
