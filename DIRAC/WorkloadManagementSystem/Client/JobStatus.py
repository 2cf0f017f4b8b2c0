"""Job states and the state machine of DIRAC's WorkloadManagement System.

Pure logic, no I/O: the JobDB, the handlers and the command line all take their
rules from here.  The table is the one DIRAC documents (../shared/dirac-api.md):
a transition not listed leaves the job's state as it is, unless forced.

Staying in the same state is not a transition: ``Running -> Running`` is how a
minor status is updated, so it is always accepted (for a known state).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from diracmq.broker.derrno import EWMSSTATUS
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

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
    "checkTransition",
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

#: Every job state, in the order DIRAC lists them.
JOB_STATES: tuple[str, ...] = (
    SUBMITTING, RECEIVED, CHECKING, SCOUTING, STAGING, WAITING, MATCHED, RESCHEDULED,
    RUNNING, STALLED, COMPLETING, DONE, COMPLETED, FAILED, KILLED, DELETED,
)

#: States in which a job no longer runs (it may still be rescheduled or deleted).
JOB_FINAL_STATES: tuple[str, ...] = (DONE, COMPLETED, FAILED, KILLED)

#: The end: nothing leaves it.
JOB_REALLY_FINAL_STATES: tuple[str, ...] = (DELETED,)

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


class JobsStateMachine:
    """DIRAC's ``JobsStateMachine(state).getNextState(candidate)``.

    ``getNextState`` returns ``S_OK(candidate)`` when the move is allowed and
    ``S_OK(state)`` (the state is kept) when it is not, as DIRAC does;
    ``S_ERROR`` only for a state name it does not know.
    """

    def __init__(self, state: str) -> None:
        self.state = state

    def getStates(self) -> list[str]:
        """Every known state."""
        return list(JOB_STATES)

    def getNextState(self, candidateState: str) -> DReturnType:
        """The state the job ends in if asked to move to ``candidateState``."""
        if candidateState not in JOB_TRANSITIONS:
            return S_ERROR(f"{candidateState} is not a valid state")
        if self.state not in JOB_TRANSITIONS:
            return S_ERROR(f"{self.state} is not a valid state")
        return S_OK(candidateState if isValidTransition(self.state, candidateState)
                    else self.state)


def reachableStates(current: str, targets: Iterable[str]) -> list[str]:
    """Those of ``targets`` a job in ``current`` may move to directly."""
    return [t for t in targets if isValidTransition(current, t)]
