"""The job state machine (pure logic): every allowed transition, the refused ones, names."""

import itertools

import pytest
from diracmq.broker.derrno import EWMSSTATUS

from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS

#: The table of ../shared/dirac-api.md, written out again independently of JobStatus.py.
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
        "Killed", "Deleted"]
    assert set(JS.JOB_FINAL_STATES) == {"Done", "Completed", "Failed", "Killed"}
    assert JS.JOB_REALLY_FINAL_STATES == ("Deleted",)
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
    # DIRAC's state machine keeps the state it has
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
