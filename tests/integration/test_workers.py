"""Worker processes: load sharing, a worker killed mid-call, the supervisor, graceful stop."""

import collections
import os
import signal
import threading
from pathlib import Path

import pytest
from diracmq.client.base import Client
from diracmq_testing import wait_until

pytestmark = pytest.mark.timeout(90)

EMQNOQUEUE, EMQNOWORKER = 1143, 1144


def alive(pid):
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def call_in_thread(func, *args, **kwargs):
    """Run ``func`` in a thread; return (thread, box) where box["result"] gets its result."""
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=func(*args, **kwargs)))
    thread.start()
    return thread, box


def started(pool, tag):
    return [r for r in pool.records() if r["tag"] == tag and r["event"] == "start"]


def test_two_workers_share_the_load(workers, settings):
    first = workers.start(threads=2)
    second = workers.start(first.system, threads=2)
    client = Client(url=f"{first.system}/Work", settings=settings, timeout=10)
    pids = collections.Counter()
    for _ in range(40):
        result = client.pid()
        assert result["OK"], result
        pids[result["Value"]] += 1
    assert set(pids) == {first.pid, second.pid}, pids
    assert min(pids.values()) >= 8, f"very uneven sharing: {pids}"


def test_concurrent_calls_spread_over_both_workers(workers, settings):
    """8 slow calls at once on 2 workers x 2 threads: both workers take some."""
    first = workers.start(threads=2)
    second = workers.start(first.system, threads=2)
    client = Client(url=f"{first.system}/Work", settings=settings, timeout=20)
    calls = [call_in_thread(client.sleep, 0.5) for _ in range(8)]
    for thread, _ in calls:
        thread.join(30)
    results = [box["result"] for _, box in calls]
    assert all(r["OK"] for r in results), results
    assert {r["Value"] for r in results} == {first.pid, second.pid}


def kill_mid_call(workers, settings, tag):
    """Start a 2 s call, SIGKILL the worker running it; return (result, victim, survivor)."""
    first = workers.start(threads=2)
    second = workers.start(first.system, threads=2)
    by_pid = {first.pid: first, second.pid: second}
    client = Client(url=f"{first.system}/Work", settings=settings, timeout=40)
    thread, box = call_in_thread(client.record, tag, 2)
    run = wait_until(lambda: started(workers, tag), 15, "the call to start on a worker")[0]
    victim = by_pid[run["pid"]]
    (survivor,) = (w for w in (first, second) if w is not victim)
    victim.kill()
    thread.join(40)
    assert not thread.is_alive(), "the call did not complete after its worker was killed"
    return box["result"], victim, survivor


def test_sigkill_mid_call_completes_on_the_other_worker(workers, settings):
    result, victim, survivor = kill_mid_call(workers, settings, "sigkill")
    assert result["OK"], result
    assert result["Value"]["pid"] == survivor.pid
    runs = started(workers, "sigkill")
    assert [r["pid"] for r in runs] == [victim.pid, survivor.pid]
    assert runs[0]["request_id"] == runs[1]["request_id"] == result["Value"]["request_id"]
    ends = [r for r in workers.records() if r["tag"] == "sigkill" and r["event"] == "end"]
    assert [r["pid"] for r in ends] == [survivor.pid]
    assert survivor.returncode is None, "the surviving worker died too"


def test_redelivered_request_is_flagged_to_the_handler(workers, settings):
    """``Request.redelivered`` is documented as True on the second delivery of a request."""
    result, _victim, survivor = kill_mid_call(workers, settings, "redelivered")
    assert result["OK"], result
    runs = started(workers, "redelivered")
    assert [r["redelivered"] for r in runs] == [False, True]


def test_supervisor_children_serve_and_sigterm_stops_all(workers, settings):
    supervisor = workers.start(processes=2, threads=2)
    children = set(supervisor.wait_ready(2))
    assert len(children) == 2 and supervisor.pid not in children
    client = Client(url=f"{supervisor.system}/Work", settings=settings, timeout=10)
    seen = set()

    def both_served():
        result = client.pid()
        assert result["OK"], result
        seen.add(result["Value"])
        return seen == children

    wait_until(both_served, 20, f"both children {children} to serve (seen {seen})", interval=0)
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait() == 0, supervisor.stderr()
    wait_until(lambda: not any(map(alive, children)), 10, "the children to be gone")


def test_supervisor_replaces_a_dead_child(workers, settings):
    supervisor = workers.start(processes=2, threads=2)
    children = supervisor.wait_ready(2)
    os.kill(children[0], signal.SIGKILL)
    pids = supervisor.wait_ready(3)
    replacement = pids[2]
    assert replacement not in children
    client = Client(url=f"{supervisor.system}/Work", settings=settings, timeout=10)
    seen = set()
    wait_until(lambda: seen.add(client.pid()["Value"]) or replacement in seen, 20,
               "the replacement child to serve", interval=0)
    assert children[0] not in seen


def test_sigterm_finishes_the_call_in_flight_then_exits_0(workers, settings):
    worker = workers.start(threads=2)
    client = Client(url=f"{worker.system}/Work", settings=settings, timeout=30)
    thread, box = call_in_thread(client.record, "drain", 2)
    wait_until(lambda: started(workers, "drain"), 15, "the call to start")
    worker.signal(signal.SIGTERM)
    thread.join(30)
    result = box["result"]
    assert result["OK"], result
    assert result["Value"]["pid"] == worker.pid
    assert worker.wait() == 0, worker.stderr()
    ends = [r for r in workers.records() if r["tag"] == "drain" and r["event"] == "end"]
    assert [r["pid"] for r in ends] == [worker.pid]
    # Nobody consumes the queue any more: a call says so once it times out.
    after = client.pid(timeout=1)
    assert after["OK"] is False and after["Errno"] == EMQNOWORKER, after


def test_sigterm_on_an_idle_worker(workers):
    worker = workers.start()
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.stderr()
    assert "worker stopped" in worker.stderr()


def test_sigint_stops_like_sigterm(workers):
    worker = workers.start()
    worker.signal(signal.SIGINT)
    assert worker.wait() == 0, worker.stderr()


def test_one_worker_serves_every_service_of_its_system(workers, settings):
    worker = workers.start()
    for service in ("Dispatch", "Work"):
        result = Client(url=f"{worker.system}/{service}", settings=settings).ping()
        assert result["OK"] and result["Value"]["pid"] == worker.pid


def test_service_option_serves_only_that_service(workers, settings):
    worker = workers.start(args=["--service", "Work"])
    assert Client(url=f"{worker.system}/Work", settings=settings).pid()["Value"] == worker.pid
    result = Client(url=f"{worker.system}/Dispatch", settings=settings, timeout=5).ping()
    assert result["Errno"] == EMQNOQUEUE, result


def test_unknown_system_exits_2_with_a_message(workers):
    worker = workers.start("NoSuchThing", wait_ready=False)
    worker.expected_returncode = 2
    assert worker.wait() == 2
    assert "no handlers for System 'NoSuchThing'" in worker.stderr()
