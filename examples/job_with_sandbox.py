"""A job with an input sandbox, from submission to its output (./demo.sh runs this).

DIRAC's user API only: ``Job`` describes the job, ``Dirac`` submits it (uploading the
input sandbox), follows it and downloads its output sandbox.  Needs a WorkloadManagement
worker, an Optimizers worker and a job agent (``dirac-job-agent``) running.
"""

import sys
import tempfile
import time
from pathlib import Path

from DIRAC.Core.Utilities.ReturnValues import returnValueOrRaise
from DIRAC.Interfaces.API.Dirac import Dirac
from DIRAC.Interfaces.API.Job import Job

TIMEOUT = 120  # seconds to wait for the job to end

with tempfile.TemporaryDirectory() as tmp:
    greeting = Path(tmp) / "greeting.txt"
    greeting.write_text("hello from the input sandbox\n")

    job = Job()
    job.setName("diracmq-demo-sandbox")
    job.setExecutable("/bin/sh", arguments="-c 'cat greeting.txt; wc -c < greeting.txt'")
    job.setInputSandbox([str(greeting)])
    job.setCPUTime(60)

    dirac = Dirac()
    job_id = returnValueOrRaise(dirac.submitJob(job))
    print(f"Submitted job {job_id} (diracmq-demo-sandbox, with an input sandbox)")

    deadline = time.monotonic() + TIMEOUT
    last = None
    while True:
        state = returnValueOrRaise(dirac.getJobStatus(job_id))[job_id]
        if (state["Status"], state["MinorStatus"]) != last:
            last = (state["Status"], state["MinorStatus"])
            print(f"  job {job_id}: {state['Status']} / {state['MinorStatus']}")
        if state["Status"] in ("Done", "Failed", "Killed"):
            break
        if time.monotonic() > deadline:
            sys.exit(f"job {job_id} did not end within {TIMEOUT}s (is a job agent running?)")
        time.sleep(0.5)

    returnValueOrRaise(dirac.getOutputSandbox(job_id, outputDir=tmp))
    print(f"Output of job {job_id}, from its output sandbox:")
    print((Path(tmp) / str(job_id) / "std.out").read_text(), end="")
    sys.exit(0 if state["Status"] == "Done" else 1)
