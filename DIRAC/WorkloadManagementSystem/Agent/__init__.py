"""Agents of the WorkloadManagement System: the job agent and the StalledJobAgent."""
