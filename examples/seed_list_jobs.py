import DIRAC
from DIRAC.Core.Utilities.ReturnValues import returnValueOrRaise
from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

jmc = JobMonitoringClient()

# Find out who the current user is
my_details = returnValueOrRaise(jmc.whoami())
username = my_details["username"]

# Find the job IDs for the given user
job_ids = returnValueOrRaise(jmc.getJobs({"owner": username}))

print(f"Job IDs for {username} are: {job_ids}")
