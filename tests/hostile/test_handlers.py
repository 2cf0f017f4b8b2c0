"""Issue 11, cases 6-9: one request or one handler must not stop a worker or a System.

6. a small request that decodes to millions of elements: EMQDECODE, memory bounded;
7. ``sys.exit()`` (any ``BaseException``) in a handler: an S_ERROR, no wedged slot;
8. a handler that kills its process twice: only that request is parked, its
   neighbours in the same process get their normal reply;
9. a child exiting with status 2 while serving: the supervisor replaces it.
"""

from __future__ import annotations

import itertools
import signal
import struct
import time
import uuid

import msgpack
import pytest
from diracmq.broker.codec import EXT_TABLE
from diracmq.broker.derrno import EMQDEADLETTER, EMQDECODE, EMQNOWORKER
from diracmq.client.base import Client
from diracmq_testing import RawRPC, pack, wait_until

from hostile.hostilelib import assert_alive, settings_for, vm_hwm_kb

pytestmark = pytest.mark.timeout(240)

#: How much one hostile request may add to a worker's peak memory.
MAX_GROWTH_KB = 300 * 1024


def _table_of_nils(rows: int) -> bytes:
    """A request whose one argument is a codec table (ext 6) of ``rows`` one-key rows:
    ``rows`` + ~40 bytes on the wire, ``rows`` dicts once decoded."""
    column = b"\xdd" + struct.pack(">I", rows) + b"\xc0" * rows
    payload = b"\x93" + pack(["a"]) + b"\x91" + column + b"\x80"
    return pack({"v": 1, "method": "echo",
                 "args": [msgpack.ExtType(EXT_TABLE, payload)]})


def test_case06_request_decoding_to_millions_of_rows_is_refused_with_bounded_memory(
        hpool, raw: RawRPC):
    """Case 6: a 5 MB request holding a 5-million-row table: S_ERROR(EMQDECODE), the
    worker's peak memory grows by less than 300 MB, and it keeps serving."""
    worker = hpool.start(threads=2)
    service = f"{worker.system}/Hostile"
    assert raw.call(service, "echo", "warm up")["OK"]
    peak_before = vm_hwm_kb(worker.pid)
    body = _table_of_nils(5_000_000)
    assert len(body) < 5_100_000
    reply = raw.request(service, body, timeout=120)
    growth = vm_hwm_kb(worker.pid) - peak_before
    shown = {k: (v if k != "Value" else f"<{type(v).__name__}>") for k, v in reply.items()}
    assert reply.get("OK") is False and reply.get("Errno") == EMQDECODE, \
        f"{shown}; peak memory grew by {growth // 1024} MB"
    assert growth < MAX_GROWTH_KB, f"peak memory grew by {growth // 1024} MB"
    assert raw.call(service, "echo", "after")["OK"]
    assert_alive(worker, "the worker died")


def test_case07_base_exceptions_in_handlers_are_s_errors_and_wedge_nothing(hpool, vhost_url):
    """Case 7: ``sys.exit()``, ``KeyboardInterrupt``, ``GeneratorExit`` in a handler:
    each call gets an S_ERROR (not a timeout); 20 in a row leave the worker serving
    (more than its 8 prefetch slots), and SIGTERM then stops it at once."""
    worker = hpool.start(threads=4)  # prefetch 8
    client = Client(url=f"{worker.system}/Hostile",
                    settings=settings_for(vhost_url, rpc_timeout=5))
    kinds = itertools.cycle(["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
    for i, kind in zip(range(20), kinds, strict=False):
        result = client.raiseBase(f"exit-{i}", kind)
        assert result["OK"] is False, result
        assert result.get("Errno") not in (EMQNOWORKER, 110), \
            f"call {i} ({kind}) got no reply: {result['Message']}"
        assert_alive(worker, f"the worker died of a handler's {kind}")
    for _ in range(5):
        assert client.ping()["OK"]
    started = time.monotonic()
    code = worker.stop(timeout=20)
    took = time.monotonic() - started
    assert code == 0 and took < 5, f"SIGTERM took {took:.1f}s (exit {code}); graceful timeout 15s"


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_case08_crash_parks_only_the_request_that_kills(hpool, vhost_url, round_):
    """Case 8 (``--processes 2 --threads 4``, three rounds): a request whose handler
    kills its process is parked after 2 deaths (EMQDEADLETTER); the 8 ordinary calls
    running beside it, in both processes, all get their normal reply."""
    worker = hpool.start(processes=2, threads=4, ready_count=2)
    client = Client(url=f"{worker.system}/Hostile",
                    settings=settings_for(vhost_url, rpc_timeout=40))
    tags = [f"r{round_}-n{i}-{uuid.uuid4().hex[:6]}" for i in range(8)]
    futures = {tag: client.submit("sleep", tag, 3) for tag in tags}
    wait_until(lambda: {r["tag"] for r in hpool.records()
                        if r.get("event") == "start"} >= set(tags), 20,
               "the 8 ordinary calls to run")
    crash = client.submit("osExit", f"r{round_}-crash", 17)
    results = {tag: future.result(timeout=60) for tag, future in futures.items()}
    crashed = crash.result(timeout=60)
    assert_alive(worker, "the supervisor died")
    worker.wait_for_lines("ended while serving", count=2, timeout=10)  # both replaced
    bad = {tag: r.get("Message") for tag, r in results.items() if not r["OK"]}
    assert not bad, f"ordinary calls beside the crash did not get their reply: {bad}"
    assert crashed.get("Errno") == EMQDEADLETTER, crashed


def test_case09_child_exiting_with_status_2_while_serving_is_restarted(hpool, vhost_url):
    """Case 9: a handler ``os._exit(2)``s its process (twice: the request is then
    parked); the supervisor takes it for a crash, not a configuration error: it
    logs it, starts new children and the service keeps answering."""
    worker = hpool.start(processes=2, threads=2, ready_count=2)
    client = Client(url=f"{worker.system}/Hostile",
                    settings=settings_for(vhost_url, rpc_timeout=30))
    result = client.osExit("exit-2", 2)
    assert result.get("Errno") == EMQDEADLETTER, result
    assert_alive(worker, "the supervisor stopped when a child exited with status 2")
    worker.wait_ready(count=4, timeout=30)  # two children replaced
    worker.wait_for_lines(r"ended while serving \(exit status 2\)", count=2, timeout=10)
    for _ in range(10):
        assert client.ping(timeout=10)["OK"]


def test_case09_configuration_error_stops_the_supervisor_and_says_why(hpool, tmp_path):
    """Case 9, the other side: children that cannot start (exit 2 before serving, here
    an unknown service) stop the supervisor with status 2 and a line saying why."""
    worker = hpool.start(processes=2, args=["--service", "NoSuchService"], wait_ready=False)
    worker.expected_returncode = 2
    code = worker.wait(timeout=60)
    assert code == 2, worker.diagnostics("expected exit status 2")
    worker.wait_for_lines(r"supervisor exiting with status 2: .*configuration error",
                          timeout=5)


def test_case09_supervisor_logs_why_it_stops_on_sigterm(hpool):
    """Case 9: stopped by SIGTERM, the supervisor says so before it exits (status 0)."""
    worker = hpool.start(processes=2, threads=1, ready_count=2)
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    worker.wait_for_lines(r"supervisor exiting with status 0: stopped by signal \(SIGTERM\)",
                          timeout=5)
