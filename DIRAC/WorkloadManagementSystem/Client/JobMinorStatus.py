"""Minor statuses the WorkloadManagement services themselves write (DIRAC's wording)."""

from __future__ import annotations

__all__ = [
    "JOB_ACCEPTED",
    "JOB_DELETED",
    "JOB_RESCHEDULED",
    "MARKED_FOR_TERMINATION",
    "MAX_RESCHEDULING",
    "RUNNING_AGAIN",
]

#: A job just submitted (status Received).
JOB_ACCEPTED = "Job accepted"
#: ``killJob``: the job is Killed.
MARKED_FOR_TERMINATION = "Marked for termination"
#: ``deleteJob``: the job is Deleted.
JOB_DELETED = "Job deleted"
#: ``rescheduleJob`` / ``resetJob``: back to Received.
JOB_RESCHEDULED = "Job Rescheduled"
#: ``rescheduleJob`` beyond the limit: the job is Failed instead.
MAX_RESCHEDULING = "Maximum of reschedulings reached"
#: A heartbeat from a Matched or Stalled job: it runs.
RUNNING_AGAIN = "Job is running"
