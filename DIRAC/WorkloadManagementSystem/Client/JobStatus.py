"""Job states and the state machine of DIRAC's WorkloadManagement System.

Pure logic, no I/O: the JobDB, the handlers and the command line all take their
rules from here.  The table is the one DIRAC documents (its JobStatus.JobsStateMachine):
a transition not listed leaves the job's state as it is, unless forced.

Staying in the same state is not a transition: ``Running -> Running`` is how a
minor status is updated, so it is always accepted (for a known state).

:class:`JobsStateMachine` answers exactly as DIRAC's (a :class:`StateMachine`: from no
state, or from ``Deleted``, which has no map, any known state is reached), and
:func:`checkJobStateTransition`/:func:`filterJobStateTransition` ask the JobMonitoring
service as DIRAC's do.  The JobDB uses the stricter :func:`isValidTransition`
(``Deleted`` is the end).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from diracmq.broker.derrno import EWMSSTATUS
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.Core.Utilities.StateMachine import State, StateMachine

__all__ = [
    "CHECKING",
    "COMPLETED",
    "COMPLETING",
    "DELETED",
    "DONE",
    "FAILED",
    "JOB_FINAL_STATES",
    "JOB_REALLY_FINAL_STATES",
    "JOB_STATES",
    "JOB_TRANSITIONS",
    "JobsStateMachine",
    "KILLED",
    "MATCHED",
    "RECEIVED",
    "RESCHEDULED",
    "RUNNING",
    "SCOUTING",
    "STAGING",
    "STALLED",
    "SUBMITTING",
    "WAITING",
    "checkJobStateTransition",
    "checkTransition",
    "filterJobStateTransition",
    "isValidTransition",
    "normalizeStatus",
    "reachableStates",
]

SUBMITTING = "Submitting"
RECEIVED = "Received"
CHECKING = "Checking"
SCOUTING = "Scouting"
STAGING = "Staging"
WAITING = "Waiting"
MATCHED = "Matched"
RESCHEDULED = "Rescheduled"
RUNNING = "Running"
STALLED = "Stalled"
COMPLETING = "Completing"
DONE = "Done"
COMPLETED = "Completed"
FAILED = "Failed"
KILLED = "Killed"
DELETED = "Deleted"

#: Every job state, a list in DIRAC's order.
JOB_STATES: list[str] = [
    SUBMITTING, RECEIVED, CHECKING, SCOUTING, STAGING, WAITING, MATCHED, RESCHEDULED,
    RUNNING, STALLED, COMPLETING, DONE, COMPLETED, FAILED, DELETED, KILLED,
]

#: States in which a job no longer runs (it may still be rescheduled or deleted).
JOB_FINAL_STATES: list[str] = [DONE, COMPLETED, FAILED, KILLED]

#: The end: the job is no longer updated.
JOB_REALLY_FINAL_STATES: list[str] = [DELETED]

#: current state -> the states it may move to.
JOB_TRANSITIONS: MappingProxyType[str, frozenset[str]] = MappingProxyType({
    SUBMITTING: frozenset({RECEIVED, CHECKING, DELETED, KILLED}),
    RECEIVED: frozenset({SCOUTING, CHECKING, WAITING, FAILED, DELETED, KILLED}),
    CHECKING: frozenset({SCOUTING, STAGING, WAITING, RESCHEDULED, FAILED, DELETED, KILLED}),
    SCOUTING: frozenset({CHECKING, FAILED, STALLED, KILLED}),
    STAGING: frozenset({CHECKING, WAITING, FAILED, KILLED}),
    WAITING: frozenset({MATCHED, RESCHEDULED, DELETED, KILLED}),
    MATCHED: frozenset({RUNNING, FAILED, RESCHEDULED, KILLED}),
    RESCHEDULED: frozenset({WAITING, RECEIVED, DELETED, FAILED, KILLED}),
    RUNNING: frozenset({STALLED, DONE, FAILED, RESCHEDULED, COMPLETING, KILLED, RECEIVED}),
    STALLED: frozenset({RUNNING, FAILED, KILLED}),
    COMPLETING: frozenset({DONE, FAILED, COMPLETED, STALLED, KILLED}),
    COMPLETED: frozenset({DONE, FAILED}),
    DONE: frozenset({DELETED}),
    FAILED: frozenset({RESCHEDULED, DELETED}),
    KILLED: frozenset({DELETED}),
    DELETED: frozenset(),
})

_BY_LOWER = {s.lower(): s for s in JOB_STATES}


def normalizeStatus(status: str) -> str | None:
    """The canonical spelling of a state name (``"running"`` -> ``"Running"``), or None."""
    if not isinstance(status, str):
        return None
    return _BY_LOWER.get(status.strip().lower())


def isValidTransition(current: str, new: str) -> bool:
    """Whether a job in state ``current`` may move to ``new`` (same state: yes)."""
    if current not in JOB_TRANSITIONS or new not in JOB_TRANSITIONS:
        return False
    return new == current or new in JOB_TRANSITIONS[current]


def checkTransition(current: str, new: str, force: bool = False) -> DReturnType:
    """``S_OK(new)`` if ``current -> new`` is allowed (or forced), else a clear S_ERROR.

    ``new`` may be spelled in any case; the value returned is its canonical name.
    An unknown ``new`` state is refused even when forced.
    """
    canonical = normalizeStatus(new)
    if canonical is None:
        return S_ERROR(EWMSSTATUS, f"Unknown job status {new!r}; known: {', '.join(JOB_STATES)}")
    if force or isValidTransition(current, canonical):
        return S_OK(canonical)
    allowed = sorted(JOB_TRANSITIONS.get(current, ()), key=JOB_STATES.index)
    return S_ERROR(EWMSSTATUS,
                   f"Transition from {current} to {canonical} is not allowed "
                   f"(from {current} a job may go to: {', '.join(allowed) or 'nothing'})")


class JobsStateMachine(StateMachine):
    """DIRAC's job state machine: ``JobsStateMachine(state).getNextState(candidate)``.

    ``S_OK(candidate)`` when the move is allowed, ``S_OK(state)`` (kept) when not;
    ``S_ERROR`` for an unknown candidate.  Levels and maps are DIRAC's.
    """

    def __init__(self, state: str | None) -> None:
        super().__init__(state)
        order = [SUBMITTING, RECEIVED, CHECKING, SCOUTING, STAGING, WAITING, MATCHED,
                 RESCHEDULED, RUNNING, STALLED, COMPLETING, COMPLETED, DONE, FAILED, KILLED]
        self.states = {DELETED: State(15)}  # no map: DIRAC puts no limit on it
        for level, name in reversed(list(enumerate(order))):
            self.states[name] = State(level, sorted(JOB_TRANSITIONS[name],
                                                    key=JOB_STATES.index), defState=name)


def checkJobStateTransition(jobID: int, candidateState: str, currentStatus: str | None = None,
                            jobMonitoringClient: Any = None) -> DReturnType:
    """S_OK if job ``jobID`` (in ``currentStatus``, else as JobMonitoring says) may move
    to ``candidateState``; S_ERROR("Job state transition not allowed") if not."""
    if not currentStatus:
        if jobMonitoringClient is None:
            from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import (
                JobMonitoringClient,
            )

            jobMonitoringClient = JobMonitoringClient()
        result = jobMonitoringClient.getJobsStatus(jobID)
        if not result["OK"]:
            return result
        try:
            currentStatus = result["Value"][jobID]["Status"]
        except (KeyError, TypeError):
            return S_ERROR("Job does not exist")
    result = JobsStateMachine(currentStatus).getNextState(candidateState)
    if not result["OK"]:
        return result
    if result["Value"] != candidateState:
        from DIRAC.FrameworkSystem.Client.Logger import gLogger

        gLogger.error("Job Status Error",
                      f"{jobID} can't move from {currentStatus} to {candidateState}")
        return S_ERROR("Job state transition not allowed")
    return S_OK()


def filterJobStateTransition(jobIDs: int | list[int], candidateState: str) -> DReturnType:
    """``S_OK([the jobs of jobIDs that may move to candidateState])`` (asks JobMonitoring);
    unknown jobs are left out."""
    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    ids = jobIDs if isinstance(jobIDs, list) else [jobIDs]
    result = JobMonitoringClient().getJobsStatus(ids)
    if not result["OK"]:
        return result
    allowed = []
    for jobID in ids:
        if jobID in result["Value"]:
            current = result["Value"][jobID]["Status"]
            reached = JobsStateMachine(current).getNextState(candidateState)
            if reached["OK"] and reached["Value"] == candidateState:
                allowed.append(jobID)
    return S_OK(allowed)


def reachableStates(current: str, targets: Iterable[str]) -> list[str]:
    """Those of ``targets`` a job in ``current`` may move to directly."""
    return [t for t in targets if isValidTransition(current, t)]
