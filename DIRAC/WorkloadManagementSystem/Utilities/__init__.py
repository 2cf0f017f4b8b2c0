"""Pure helpers of the WorkloadManagement System: JDL parsing, parametric jobs, job IDs."""
