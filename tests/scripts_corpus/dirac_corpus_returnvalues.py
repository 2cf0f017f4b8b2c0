"""S_OK/S_ERROR, convertToReturnValue and returnValueOrRaise, as DIRAC code uses them."""
from DIRAC import S_ERROR, S_OK
from DIRAC.Core.Utilities.DErrno import EWMSJDL
from DIRAC.Core.Utilities.ReturnValues import (
    SErrorException,
    convertToReturnValue,
    returnValueOrRaise,
)


class Broken(Exception):
    pass


@convertToReturnValue
def divide(a, b):
    if b == 1:
        raise SErrorException(S_ERROR(EWMSJDL, "one is not allowed"))
    if b == 2:
        raise Broken("two breaks it")
    return a / b


print(divide(6, 3))
print(divide(6, 1)["Message"])
try:
    returnValueOrRaise(divide(6, 2))
except Broken as exc:
    print("re-raised the original:", repr(exc))
try:
    returnValueOrRaise(divide(6, 1))
except SErrorException as exc:
    print("SErrorException:", exc.result["Errno"])
print(S_OK([1, 2]), S_ERROR("plain")["Errno"])
