"""DIRAC's ``State`` and ``StateMachine``: the rules a state machine of DIRAC follows.

A :class:`State` has a level (its order), the states it may move to (``stateMap``) and a
default (``defState``) taken when asked to move anywhere else.  A state without a map has
no restriction: asked to move to X, it goes to X (DIRAC relies on this for its final
states, so ``Deleted -> Running`` is allowed by ``JobsStateMachine``; the JobDB applies
its own stricter rule on top).
"""

from __future__ import annotations

from typing import Any

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

__all__ = ["State", "StateMachine"]


class State:
    """One state: ``level``, the reachable states, the default next state."""

    def __init__(self, level: int, stateMap: list[str] | None = None,
                 defState: str | None = None) -> None:
        self.level = level
        self.stateMap = list(stateMap) if stateMap else []
        self.default = defState

    def transitionRule(self, nextState: str) -> str:
        """Where a request to move to ``nextState`` leads: there if it is in the map,
        else the default, else (no default) there anyway."""
        if nextState in self.stateMap:
            return nextState
        return self.default or nextState


class StateMachine:
    """States by name (``self.states``, set by subclasses) and the current ``state``."""

    def __init__(self, state: str | None = None) -> None:
        self.state = state
        self.states: dict[str, State] = {"Nirvana": State(100)}

    def getLevelOfState(self, state: str) -> int:
        """The level of ``state``, -1 for an unknown one."""
        known = self.states.get(state)
        return known.level if known is not None else -1

    def getStates(self) -> list[str]:
        """Every state name, in the order they were defined."""
        return list(self.states)

    def getNextState(self, candidateState: Any) -> DReturnType:
        """``S_OK(the state reached)`` when asked to move to ``candidateState``.

        An unknown candidate is an S_ERROR; from no current state (None) any known
        candidate is reached.
        """
        if candidateState not in self.states:
            return S_ERROR(f"getNextState: {candidateState!r} is not a valid state")
        if self.state is None:
            return S_OK(candidateState)
        current = self.states.get(self.state)
        if current is None:
            return S_ERROR(f"getNextState: {self.state!r} is not a valid state")
        return S_OK(current.transitionRule(candidateState))

    def setState(self, candidateState: Any, noWarn: bool = False) -> DReturnType:
        """Move to ``candidateState`` as the rules allow; ``S_OK(the new state)``.

        A falsy candidate clears the state; an unknown one is an S_ERROR; from a state
        without a map (final) nothing moves.
        """
        if candidateState == self.state:
            return S_OK(candidateState)
        if not candidateState:
            self.state = candidateState
            return S_OK(self.state)
        if candidateState not in self.states:
            return S_ERROR(f"setState: {candidateState!r} is not a valid state")
        current = self.states.get(self.state) if self.state is not None else None
        if current is not None and not current.stateMap:
            if not noWarn:
                from DIRAC.FrameworkSystem.Client.Logger import gLogger

                gLogger.warn("Final state, won't move",
                             f"({self.state}, asked to move to {candidateState})")
            return S_OK(self.state)
        result = self.getNextState(candidateState)
        if result["OK"]:
            self.state = result["Value"]
            return S_OK(self.state)
        return result
