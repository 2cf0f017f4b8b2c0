"""Submit a few demo jobs owned by the calling user (./demo.sh runs this).

Uses DIRAC's documented client API only: ``DIRAC.initialize()``, then
``JobManagerClient().submitJob(jdl)``, which returns ``S_OK(jobID)``.
"""

import sys

import DIRAC
from DIRAC.Core.Utilities.ReturnValues import returnValueOrRaise

DIRAC.initialize()  # optional here: it checks now that the broker answers

try:
    from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient
except ImportError as exc:
    print(f"note: no JobManagerClient in this version ({exc}); no demo jobs submitted, "
          f"so the job list below may be empty", file=sys.stderr)
    sys.exit(0)

JDL = """[
  JobName = "diracmq-demo-{n}";
  Executable = "/bin/echo";
  Arguments = "hello from diracmq demo job {n}";
  StdOutput = "std.out";
  StdError = "std.err";
  OutputSandbox = {{"std.out", "std.err"}};
]"""

jmc = JobManagerClient()
for n in (1, 2, 3):
    job_id = returnValueOrRaise(jmc.submitJob(JDL.format(n=n)))
    print(f"Submitted job {job_id} (diracmq-demo-{n})")
