"""DIRAC's documented dispatch rules, through ``Client`` and from a raw pika publisher.

One worker (module-scoped) serves the diractest ``Dispatch`` handler under a fresh
System name; every case runs twice: through ``Client`` and as a hand-made v1 request.
"""

import pytest
from diracmq.client.base import Client
from diracmq_testing import RawRPC

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def system(module_workers):
    return module_workers.start().system


@pytest.fixture(scope="module")
def service(system):
    return f"{system}/Dispatch"


@pytest.fixture(params=["client", "raw"])
def call(request, service, settings, vhost_url):
    """``call(method, *args)`` -> the reply dict, through Client or raw AMQP."""
    if request.param == "client":
        client = Client(url=service, settings=settings, timeout=10)
        return client.executeRPC
    rpc = RawRPC(vhost_url)
    request.addfinalizer(rpc.close)
    return lambda method, *args: rpc.call(service, method, *args)


def error(message, errno=0):
    """What travels for an S_ERROR: no CallStack, nothing else."""
    return {"OK": False, "Errno": errno, "Message": message}


# ---------------------------------------------------------------- reachable
def test_export_method_is_called_with_positional_args(call):
    assert call("echoArgs", 1, "two", [3]) == {"OK": True, "Value": [1, "two", [3]]}


def test_initialize_handler_state_and_initialize_request(call, service):
    result = call("getInitState")
    assert result["OK"], result
    state = result["Value"]
    assert state["initialized"] is True
    assert state["service"] == service
    assert state["system"] == service.split("/")[0]
    assert state["requestInitialized"] is True


def test_initialize_request_error_is_the_reply(call):
    assert call("guarded") == error("initializeRequest refused guarded")


def test_handler_errno_and_extra_keys_travel(call):
    assert call("failWithErrno") == {"OK": False, "Errno": 1004, "JobID": 17,
                                     "Message": "Wrong value passed ( 1004 : bad value)"}
    assert call("okWithExtraKey") == {"OK": True, "Value": 17, "JobID": 17}


# -------------------------------------------------------------- unreachable
@pytest.mark.parametrize("method", [
    "noSuchMethod",      # unknown
    "_helper",           # private method of the handler
    "_secret",           # export__secret exists, but the name is private
    "__class__",         # dunders
    "__init__",
    "__dict__",
    "notExported",       # a method without export_
    "counter",           # a non-export class attribute
    "value",             # export_value exists but is not callable
    "export_echoArgs",   # the export_ prefix is added by the server, not sent
    "initializeHandler",
    "getRemoteCredentials",
    "",
    "echoArgs.__func__",
    "echo Args",
])
def test_unknown_method(call, method):
    assert call(method) == error(f"Unknown method {method}")


def test_private_names_are_not_client_attributes(service, settings):
    client = Client(url=service, settings=settings)
    with pytest.raises(AttributeError):
        client._helper  # noqa: B018
    with pytest.raises(AttributeError):
        client.__nothing__  # noqa: B018


# ------------------------------------------------------------------ types_
MISMATCH = "Type mismatch in parameter {} (starting with param 0) Received {}, expected {}"


def test_types_single(call):
    assert call("single", 21) == {"OK": True, "Value": 42}
    assert call("single", "21") == error(MISMATCH.format(0, str, int))
    assert call("single", 2.0) == error(MISMATCH.format(0, float, int))
    assert call("single", None) == error(MISMATCH.format(0, type(None), int))


def test_types_list_and_tuple_of_types(call):
    assert call("multi", 1, "a") == {"OK": True, "Value": [1, "a"]}
    assert call("multi", 1.5, b"b") == {"OK": True, "Value": [1.5, b"b"]}
    assert call("multi", "1", "a") == error(MISMATCH.format(0, str, [int, float]))
    assert call("multi", 1, 2) == error(MISMATCH.format(1, int, (str, bytes)))


def test_types_none_entry_skips_the_position(call):
    for anything in (None, 1, "x", [1], {"a": 1}):
        assert call("withNone", "n", anything, {}) == {"OK": True, "Value": ["n", anything, {}]}
    assert call("withNone", "n", 0, []) == error(MISMATCH.format(2, list, dict))
    assert call("withNone", 0, 0, {}) == error(MISMATCH.format(0, int, str))


def test_too_few_arguments(call):
    assert call("single") == error("Function single expects at least 1 arguments")
    assert call("twoArgs", 1) == error("Function twoArgs expects at least 2 arguments")
    assert call("withNone", "n") == error("Function withNone expects at least 3 arguments")


def test_type_mismatch_is_reported_before_missing_arguments(call):
    """DIRAC checks the types of the arguments given first, then their number."""
    assert call("twoArgs", "x") == error(MISMATCH.format(0, str, int))


def test_too_many_arguments_is_a_server_error(call):
    result = call("single", 1, 2)
    assert result["OK"] is False
    assert result["Message"].startswith("Server error while serving single: "), result
    assert "positional argument" in result["Message"]


# ---------------------------------------------------------- handler faults
def test_handler_raises(call):
    assert call("boom") == error("Server error while serving boom: kaboom 42")


@pytest.mark.parametrize("method", ["notSOK", "returnsNone"])
def test_handler_returns_something_else_than_S_OK(call, method):
    assert call(method) == error(
        f"Method {method} for action RPC does not return a S_OK/S_ERROR!")


def test_worker_still_serves_after_faults(call):
    for method in ("boom", "notSOK", "__class__"):
        call(method)
    assert call("echoArgs", "alive") == {"OK": True, "Value": ["alive"]}
