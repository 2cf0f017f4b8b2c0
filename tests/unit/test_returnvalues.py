"""Unit tests for broker.returnvalues / broker.derrno and their DIRAC re-exports."""

import errno
import os

import pytest
from diracmq.broker import derrno
from diracmq.broker.derrno import cmpError, dErrorCode, dStrError, strerror
from diracmq.broker.returnvalues import (
    S_ERROR,
    S_OK,
    SErrorException,
    convertToReturnValue,
    isReturnStructure,
    returnSingleResult,
    returnValueOrRaise,
)

# --- derrno -----------------------------------------------------------------

DIRAC_CODES = {
    "ETYPE": 1000,
    "EIMPERR": 1001,
    "ENOMETH": 1002,
    "ECONF": 1003,
    "EVALUE": 1004,
    "EEEXCEPTION": 1005,
    "EDISET": 1110,
    "ENOAUTH": 1111,
    "EDB": 1130,
    "EMQCONN": 1142,
    "EMQNOQUEUE": 1143,
    "EMQNOWORKER": 1144,
    "EMQDECODE": 1145,
    "EMQENCODE": 1146,
    "EMQDEADLETTER": 1147,
    "ESECTION": 1400,
    "EWMSUKN": 1500,
    "EWMSJDL": 1501,
    "EWMSSUBM": 1503,
    "EWMSSTATUS": 1505,
    "EWMSNOMATCH": 1510,
}


def test_codes_values_and_tables():
    for name, code in DIRAC_CODES.items():
        assert getattr(derrno, name) == code
        assert dErrorCode[code] == name
        assert isinstance(dStrError[code], str) and dStrError[code]
    assert set(dErrorCode) == set(dStrError) == set(DIRAC_CODES.values())


def test_strerror_dirac_table():
    assert strerror(derrno.ENOAUTH) == "Unauthorized query"
    assert strerror(derrno.EMQCONN) == "MQ connection failure"
    assert strerror(derrno.ETYPE) == "Object Type Error"
    assert strerror(derrno.EWMSJDL) == "Invalid job description"
    assert strerror(derrno.EMQNOQUEUE) == "No such service queue"
    assert strerror(derrno.EMQDEADLETTER) == "Request dead-lettered"


def test_strerror_falls_back_to_os():
    assert strerror(errno.ETIMEDOUT) == os.strerror(errno.ETIMEDOUT)
    assert strerror(errno.ENOENT) == os.strerror(errno.ENOENT)
    assert isinstance(strerror(10**30), str)


def test_cmpError():
    assert cmpError(derrno.ENOAUTH, derrno.ENOAUTH)
    assert not cmpError(derrno.ENOAUTH, derrno.EDB)
    assert cmpError(S_ERROR(derrno.EDB, "boom"), derrno.EDB)
    assert not cmpError(S_ERROR(derrno.EDB, "boom"), derrno.ENOAUTH)
    assert not cmpError(S_ERROR("plain"), derrno.EDB)
    assert not cmpError(S_OK(1), derrno.EDB)
    assert cmpError(S_ERROR(errno.ETIMEDOUT, "slow")["Message"], errno.ETIMEDOUT)
    with pytest.raises(TypeError):
        cmpError(1.5, derrno.EDB)


# --- S_OK / S_ERROR ---------------------------------------------------------


def test_S_OK():
    assert S_OK() == {"OK": True, "Value": None}
    assert S_OK([1, 2]) == {"OK": True, "Value": [1, 2]}


def test_S_ERROR_message_only():
    res = S_ERROR("msg")
    assert res["OK"] is False
    assert res["Errno"] == 0
    assert res["Message"] == "msg"
    assert isinstance(res["CallStack"], list)
    assert all(isinstance(line, str) for line in res["CallStack"])
    assert set(res) == {"OK", "Errno", "Message", "CallStack"}


def test_S_ERROR_errno_and_message():
    res = S_ERROR(derrno.ENOAUTH, "Unauthorized query")
    assert res["Errno"] == 1111
    assert res["Message"] == "Unauthorized query ( 1111 : Unauthorized query)"
    res = S_ERROR(errno.ETIMEDOUT, "no answer")
    assert res["Errno"] == errno.ETIMEDOUT
    assert res["Message"] == f"{os.strerror(errno.ETIMEDOUT)} ( {errno.ETIMEDOUT} : no answer)"


def test_S_ERROR_keywords_and_empty():
    assert S_ERROR(errno=derrno.EDB, message="x")["Message"] == "Database error ( 1130 : x)"
    assert S_ERROR(message="only")["Message"] == "only"
    assert S_ERROR(message="only")["Errno"] == 0
    assert S_ERROR(derrno.EDB, message="x")["Message"] == "Database error ( 1130 : x)"
    assert S_ERROR(derrno.EDB)["Message"] == "Database error ( 1130 : )"
    res = S_ERROR()
    assert res["OK"] is False and res["Errno"] == 0 and res["Message"] == ""
    with pytest.raises(TypeError):
        S_ERROR(bogus=1)


def test_S_ERROR_callstack_is_short_and_points_at_caller():
    def level3():
        return S_ERROR("deep")

    def level2():
        return level3()

    def level1():
        return level2()

    stack = level1()["CallStack"]
    assert 0 < len(stack) <= 5
    assert "level3" in stack[-1]  # innermost frame is the caller's line,
    assert 'S_ERROR("deep")' in stack[-1]  # not S_ERROR's internals
    assert "level2" in stack[-2]

    def deep(n):
        return deep(n - 1) if n else S_ERROR("deep")

    assert 0 < len(deep(200)["CallStack"]) <= 5
    assert S_ERROR("x", callStack=["a"])["CallStack"] == ["a"]


def test_isReturnStructure():
    assert isReturnStructure(S_OK())
    assert isReturnStructure(S_ERROR("x"))
    assert isReturnStructure({"OK": True, "Value": 1, "JobID": 1})
    assert isReturnStructure({"OK": False, "Message": "m"})
    assert not isReturnStructure({"OK": True})
    assert not isReturnStructure({"OK": False, "Value": 1})
    assert not isReturnStructure({"OK": 1, "Value": 1})
    assert not isReturnStructure({"Value": 1})
    assert not isReturnStructure(None)
    assert not isReturnStructure([("OK", True)])


# --- exceptions -------------------------------------------------------------


def test_returnValueOrRaise():
    assert returnValueOrRaise(S_OK(42)) == 42
    err = S_ERROR(derrno.EDB, "down")
    with pytest.raises(SErrorException) as excinfo:
        returnValueOrRaise(err)
    assert excinfo.value.result is err
    assert excinfo.value.errCode == derrno.EDB
    assert str(excinfo.value) == err["Message"]
    with pytest.raises(SErrorException) as excinfo:
        returnValueOrRaise(S_ERROR("plain"), errorCode=derrno.EVALUE)
    assert excinfo.value.errCode == derrno.EVALUE
    assert excinfo.value.result["Message"] == "plain"
    with pytest.raises(TypeError):
        returnValueOrRaise({"nope": 1})


def test_SErrorException():
    e = SErrorException("bad thing")
    assert isinstance(e, Exception)
    assert e.result["OK"] is False
    assert e.result["Errno"] == 0
    assert str(e) == "bad thing"
    e = SErrorException("bad value", errCode=derrno.EVALUE)
    assert e.result["Errno"] == derrno.EVALUE
    assert str(e) == "Wrong value passed ( 1004 : bad value)"
    err = S_ERROR("kept")
    assert SErrorException(err).result is err
    with pytest.raises(ValueError):
        SErrorException(S_OK(1))


def test_convertToReturnValue_three_paths():
    @convertToReturnValue
    def f(mode):
        """Docstring kept."""
        if mode == "ok":
            return {"a": 1}
        if mode == "serror":
            raise SErrorException("nope", errCode=derrno.EVALUE)
        raise KeyError("k")

    assert f.__name__ == "f"
    assert f.__doc__ == "Docstring kept."
    assert f("ok") == {"OK": True, "Value": {"a": 1}}
    res = f("serror")
    assert res["OK"] is False and res["Errno"] == derrno.EVALUE
    assert res["Message"] == "Wrong value passed ( 1004 : nope)"
    res = f("other")
    assert res["OK"] is False and res["Errno"] == 0
    assert res["Message"] == repr(KeyError("k"))


# --- returnSingleResult -----------------------------------------------------


def test_returnSingleResult():
    assert returnSingleResult(S_OK({"Successful": {"lfn": 3}, "Failed": {}})) == S_OK(3)
    res = returnSingleResult(S_OK({"Successful": {}, "Failed": {"lfn": "no replica"}}))
    assert res["OK"] is False and res["Message"] == "no replica"
    # Failed wins over Successful.
    res = returnSingleResult(S_OK({"Successful": {"a": 1}, "Failed": {"b": "bad"}}))
    assert res["OK"] is False and res["Message"] == "bad"
    # An S_ERROR entry keeps its Errno.
    inner = S_ERROR(derrno.EDB, "x")
    assert returnSingleResult(S_OK({"Successful": {}, "Failed": {"k": inner}})) is inner
    # An S_ERROR bulk passes through.
    err = S_ERROR("whole call failed")
    assert returnSingleResult(err) is err
    # Empty or malformed bulks fail.
    assert returnSingleResult(S_OK({"Successful": {}, "Failed": {}}))["OK"] is False
    assert returnSingleResult(S_OK({}))["OK"] is False
    assert returnSingleResult(S_OK([1]))["OK"] is False
    assert returnSingleResult("junk")["OK"] is False


# --- DIRAC re-exports -------------------------------------------------------


def test_dirac_modules_reexport():
    from DIRAC.Core.Utilities import DErrno, ReturnValues

    for name in ReturnValues.__all__:
        assert hasattr(ReturnValues, name)
    assert ReturnValues.S_OK is S_OK
    assert ReturnValues.S_ERROR is S_ERROR
    assert ReturnValues.returnValueOrRaise is returnValueOrRaise
    assert ReturnValues.SErrorException is SErrorException
    assert DErrno.ENOAUTH == 1111
    assert DErrno.strerror is strerror
    assert DErrno.cmpError is cmpError
    assert set(DErrno.__all__) == set(derrno.__all__)


class _Original(Exception):
    pass


def test_return_value_or_raise_reraises_the_original_exception():
    from diracmq.broker.returnvalues import convertToReturnValue, returnValueOrRaise

    @convertToReturnValue
    def sad():
        raise _Original("I am sad")

    result = sad()
    assert result["OK"] is False and "_Original" in result["Message"]
    assert isinstance(result["ExecInfo"][1], _Original)
    assert any("raise _Original" in frame for frame in result["CallStack"])  # its traceback
    with pytest.raises(_Original, match="I am sad"):
        returnValueOrRaise(result)
