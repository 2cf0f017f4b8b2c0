"""The job state machine (pure logic): every allowed transition, the refused ones, names."""

import itertools

import pytest
from diracmq.broker.derrno import EWMSSTATUS

from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS

#: DIRAC's documented transition table, written out again independently of JobStatus.py.
DOCUMENTED = {
    "Submitting": ["Received", "Checking", "Deleted", "Killed"],
    "Received": ["Scouting", "Checking", "Waiting", "Failed", "Deleted", "Killed"],
    "Checking": ["Scouting", "Staging", "Waiting", "Rescheduled", "Failed", "Deleted", "Killed"],
    "Scouting": ["Checking", "Failed", "Stalled", "Killed"],
    "Staging": ["Checking", "Waiting", "Failed", "Killed"],
    "Waiting": ["Matched", "Rescheduled", "Deleted", "Killed"],
    "Matched": ["Running", "Failed", "Rescheduled", "Killed"],
    "Rescheduled": ["Waiting", "Received", "Deleted", "Failed", "Killed"],
    "Running": ["Stalled", "Done", "Failed", "Rescheduled", "Completing", "Killed", "Received"],
    "Stalled": ["Running", "Failed", "Killed"],
    "Completing": ["Done", "Failed", "Completed", "Stalled", "Killed"],
    "Completed": ["Done", "Failed"],
    "Done": ["Deleted"],
    "Failed": ["Rescheduled", "Deleted"],
    "Killed": ["Deleted"],
    "Deleted": [],
}
ALLOWED = [(a, b) for a, targets in DOCUMENTED.items() for b in targets]
REFUSED = [(a, b) for a, b in itertools.product(DOCUMENTED, DOCUMENTED)
           if a != b and b not in DOCUMENTED[a]]


def test_states_and_final_states():
    # the order of the documented list of states
    assert list(JS.JOB_STATES) == [
        "Submitting", "Received", "Checking", "Scouting", "Staging", "Waiting", "Matched",
        "Rescheduled", "Running", "Stalled", "Completing", "Done", "Completed", "Failed",
        "Deleted", "Killed"]  # DIRAC's list, in DIRAC's order
    assert JS.JOB_FINAL_STATES == ["Done", "Completed", "Failed", "Killed"]
    assert JS.JOB_REALLY_FINAL_STATES == ["Deleted"]
    assert {k: set(v) for k, v in JS.JOB_TRANSITIONS.items()} == \
        {k: set(v) for k, v in DOCUMENTED.items()}


@pytest.mark.parametrize(("current", "new"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_every_documented_transition_is_allowed(current, new):
    assert JS.isValidTransition(current, new)
    assert JS.checkTransition(current, new) == {"OK": True, "Value": new}
    assert JS.JobsStateMachine(current).getNextState(new)["Value"] == new


@pytest.mark.parametrize(("current", "new"), REFUSED, ids=[f"{a}->{b}" for a, b in REFUSED])
def test_every_other_transition_is_refused(current, new):
    assert not JS.isValidTransition(current, new)
    result = JS.checkTransition(current, new)
    assert not result["OK"]
    assert result["Errno"] == EWMSSTATUS
    assert f"from {current} to {new} is not allowed" in result["Message"]
    # DIRAC's state machine keeps the state it has (Deleted has no map: see below)
    if current != "Deleted":
        assert JS.JobsStateMachine(current).getNextState(new)["Value"] == current
    # ...unless forced
    assert JS.checkTransition(current, new, force=True)["Value"] == new


def test_refusal_says_where_the_job_may_go():
    message = JS.checkTransition("Done", "Running")["Message"]
    assert "from Done a job may go to: Deleted" in message
    assert "may go to: nothing" in JS.checkTransition("Deleted", "Running")["Message"]


@pytest.mark.parametrize("state", list(DOCUMENTED))
def test_staying_in_a_state_is_not_a_transition(state):
    assert JS.isValidTransition(state, state)
    assert JS.checkTransition(state, state)["OK"]


def test_nothing_leaves_deleted():
    assert JS.reachableStates("Deleted", DOCUMENTED) == ["Deleted"]


def test_unknown_states_are_refused_even_when_forced():
    for force in (False, True):
        result = JS.checkTransition("Running", "Exploded", force=force)
        assert not result["OK"] and "Unknown job status 'Exploded'" in result["Message"]
    assert not JS.isValidTransition("Exploded", "Running")
    assert not JS.JobsStateMachine("Running").getNextState("Exploded")["OK"]


def test_state_names_are_case_insensitive_and_canonicalised():
    assert JS.normalizeStatus(" running ") == "Running"
    assert JS.normalizeStatus("nope") is None
    assert JS.normalizeStatus(3) is None
    assert JS.checkTransition("Matched", "RUNNING") == {"OK": True, "Value": "Running"}


def test_the_table_cannot_be_modified():
    with pytest.raises(TypeError):
        JS.JOB_TRANSITIONS["Done"] = frozenset({"Running"})  # type: ignore[index]


#: What DIRAC's JobsStateMachine answers, derived from DIRAC's rules rather than from
#: JobStatus.py: from None any known state is reached; a state with a map goes to the
#: candidate when listed, else stays (its default is itself); Deleted has no map and no
#: default, so it goes wherever it is asked.
def dirac_next_state(current, candidate):
    if candidate not in DOCUMENTED:
        return None  # S_ERROR
    if current is None or current == "Deleted":
        return candidate
    return candidate if candidate in DOCUMENTED[current] else current


PAIRS = list(itertools.product([None, *DOCUMENTED], DOCUMENTED))


def test_jobs_state_machine_answers_as_dirac_for_all_272_pairs():
    assert len(PAIRS) == 272
    wrong = []
    for current, candidate in PAIRS:
        result = JS.JobsStateMachine(current).getNextState(candidate)
        if not result["OK"] or result["Value"] != dirac_next_state(current, candidate):
            wrong.append((current, candidate, result))
    assert wrong == []
    assert not JS.JobsStateMachine(None).getNextState("Exploded")["OK"]


def test_jobs_state_machine_levels_and_set_state():
    machine = JS.JobsStateMachine("Waiting")
    assert machine.getLevelOfState("Submitting") == 0
    assert machine.getLevelOfState("Deleted") == 15
    assert machine.getLevelOfState("Nope") == -1
    assert machine.getStates()[0] == "Deleted" and machine.getStates()[-1] == "Submitting"
    assert machine.setState("Matched") == {"OK": True, "Value": "Matched"}
    assert machine.setState("Done") == {"OK": True, "Value": "Matched"}  # refused: kept
    assert not machine.setState("Exploded")["OK"]
    final = JS.JobsStateMachine("Deleted")
    assert final.setState("Running", noWarn=True) == {"OK": True, "Value": "Deleted"}


class _FakeMonitoring:
    """A JobMonitoring stand-in for the pure logic of checkJobStateTransition."""

    def __init__(self, states):
        self.states = states

    def getJobsStatus(self, ids):
        ids = ids if isinstance(ids, list) else [ids]
        return {"OK": True, "Value": {i: {"Status": self.states[i]} for i in ids
                                      if i in self.states}}


def test_check_job_state_transition():
    monitor = _FakeMonitoring({1: "Running", 2: "Done"})
    assert JS.checkJobStateTransition(1, "Done", jobMonitoringClient=monitor)["OK"]
    refused = JS.checkJobStateTransition(2, "Running", jobMonitoringClient=monitor)
    assert refused["Message"] == "Job state transition not allowed"
    missing = JS.checkJobStateTransition(3, "Running", jobMonitoringClient=monitor)
    assert missing["Message"] == "Job does not exist"
    assert JS.checkJobStateTransition(9, "Killed", currentStatus="Waiting")["OK"]
