"""DIRAC's ``DIRAC.Core.Utilities.ReturnValues``: re-exports :mod:`broker.returnvalues`."""

from diracmq.broker.returnvalues import *  # noqa: F403
from diracmq.broker.returnvalues import (
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
