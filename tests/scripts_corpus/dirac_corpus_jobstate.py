"""The job state machine, and the transitions allowed for real jobs."""
from DIRAC.Core.Base.Script import Script

Script.parseCommandLine()

from DIRAC.WorkloadManagementSystem.Client import JobStatus  # noqa: E402
from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient  # noqa: E402

print(JobStatus.JobsStateMachine(None).getNextState(JobStatus.RUNNING)["Value"])
print(JobStatus.JobsStateMachine("Done").getNextState("Running")["Value"])
print(JobStatus.JobsStateMachine("Deleted").getNextState("Running")["Value"])
print(JobStatus.JobsStateMachine("Waiting").getNextState("Nope")["OK"])
jobID = JobManagerClient().submitJob('[ Executable = "/bin/true"; ]')["Value"]
print(JobStatus.filterJobStateTransition([jobID, 987654321], "Checking")["Value"] == [jobID])
print(JobStatus.filterJobStateTransition(jobID, "Done")["Value"])
print(JobStatus.checkJobStateTransition(jobID, "Done")["Message"])
