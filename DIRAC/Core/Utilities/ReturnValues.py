"""DIRAC's ``DIRAC.Core.Utilities.ReturnValues``: re-exports :mod:`broker.returnvalues`."""

from broker.returnvalues import *  # noqa: F403
from broker.returnvalues import (
    S_ERROR,
    S_OK,
    DReturnType,
    SErrorException,
    convertToReturnValue,
    isReturnStructure,
    returnSingleResult,
    returnValueOrRaise,
)

__all__ = [
    "DReturnType",
    "S_OK",
    "S_ERROR",
    "SErrorException",
    "returnValueOrRaise",
    "convertToReturnValue",
    "isReturnStructure",
    "returnSingleResult",
]
