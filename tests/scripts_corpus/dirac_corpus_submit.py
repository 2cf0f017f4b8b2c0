"""Submit a job and follow it, with the WMS clients (DIRAC's user tutorial)."""
from DIRAC import exit as DIRACExit
from DIRAC import gLogger
from DIRAC.Core.Base.Script import Script

Script.registerArgument("JobName: the job's name")
Script.parseCommandLine()
(name,) = Script.getPositionalArgs()

from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient  # noqa: E402
from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import (  # noqa: E402
    JobMonitoringClient,
)

result = JobManagerClient().submitJob(f'[ Executable = "/bin/true"; JobName = "{name}"; ]')
if not result["OK"]:
    gLogger.error("Submission failed:", result["Message"])
    DIRACExit(1)
jobID = result["Value"]
status = JobMonitoringClient().getJobsStatus([jobID])["Value"][jobID]["Status"]
name_back = JobMonitoringClient().getJobAttribute(jobID, "JobName")["Value"]
gLogger.notice(f"submitted {name_back}: {status} (JobID key: {result['JobID'] == jobID})")
DIRACExit(0)
