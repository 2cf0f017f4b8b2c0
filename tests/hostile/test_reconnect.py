"""Issue 11, cases 10 and 11: retrying without pausing, and giving up too early.

10. a worker whose login is refused (wrong password), or whose broker port is closed
    or refusing, backs off: at most a few attempts a second, at most one log line per
    attempt, no tracebacks.  On the private node (its log counts the refused logins).
11. a client whose broker is down gets its call through when the broker comes back
    1 s before the call's deadline.
"""

from __future__ import annotations

import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from diracmq.client.base import Client
from diracmq_testing import free_closed_port
from fault.tcpproxy import TcpProxy

from hostile.hostilelib import assert_alive, settings_for

pytestmark = pytest.mark.timeout(120)

#: Observation window, and the most connection attempts a second it may show.
WINDOW = 5.0
MAX_RATE = 5.0


def _with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


def _vhost_of(url: str) -> str:
    from diracmq_testing import url_vhost

    return url_vhost(url)


def _refusals(hnode, user: str) -> int:
    return hnode.log_text().count(f"user '{user}' - invalid credentials")


def _watch(worker, seconds: float) -> list[str]:
    """The worker's log lines during the next ``seconds`` (or until it exits)."""
    start = len(worker.lines)
    end = time.monotonic() + seconds
    while time.monotonic() < end and worker.returncode is None:
        time.sleep(0.1)  # an observation window, not a wait for an event
    return worker.lines[start:]


def _check_quiet(lines: list[str], attempts: int | None, seconds: float) -> None:
    """At most MAX_RATE attempts a second, one log line per attempt, no traceback."""
    problems = []
    tracebacks = sum(line.startswith("Traceback") for line in lines)
    if tracebacks:
        problems.append(f"{tracebacks} tracebacks")
    if attempts is not None:
        if attempts > MAX_RATE * seconds:
            problems.append(f"{attempts} connection attempts")
        if len(lines) > attempts + 3:
            problems.append(f"{len(lines)} log lines for {attempts} attempts")
    elif len(lines) > MAX_RATE * seconds + 3:
        problems.append(f"{len(lines)} log lines")
    assert not problems, f"in {seconds:g}s: {', '.join(problems)}:\n" + "\n".join(lines[:30])


def _new_user(hnode, url: str) -> tuple[str, str]:
    user, password = f"h11t-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    hnode.ctl("add_user", user, password)
    hnode.ctl("set_permissions", "-p", _vhost_of(url), user, ".*", ".*", ".*")
    return user, password


def test_case10_refused_login_after_serving_backs_off(hnode, node_pool):
    """Case 10: a worker served, then its password was changed and its connection
    closed: its logins are refused; it must back off and log quietly."""
    user, password = _new_user(hnode, node_pool.broker_url)
    url = _with_credentials(node_pool.broker_url, user, password)
    worker = node_pool.start(url=url, threads=2)
    worker.expected_returncode = None  # it may keep trying or give up: both are fine
    client = Client(url=f"{worker.system}/Hostile", settings=settings_for(node_pool.broker_url))
    assert client.ping()["OK"]
    hnode.ctl("change_password", user, "not-" + password)
    before = _refusals(hnode, user)
    hnode.ctl("close_all_connections", "-p", _vhost_of(url), "h11t: password changed")
    lines = _watch(worker, WINDOW)
    _check_quiet(lines, _refusals(hnode, user) - before, WINDOW)


def test_case10_refused_login_at_start_backs_off(hnode, node_pool):
    """Case 10: a worker started with a wrong password: few attempts, quiet log."""
    user, password = _new_user(hnode, node_pool.broker_url)
    url = _with_credentials(node_pool.broker_url, user, "wrong-" + password)
    worker = node_pool.start(url=url, threads=2, wait_ready=False)
    worker.expected_returncode = None
    lines = _watch(worker, WINDOW)
    _check_quiet(lines, _refusals(hnode, user), WINDOW)


def test_case10_closed_port_backs_off_quietly(node_pool):
    """Case 10: a worker whose broker port is closed: a few lines a second at most,
    no pika tracebacks."""
    url = f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F"
    worker = node_pool.start(url=url, threads=2, wait_ready=False)
    worker.expected_returncode = None
    lines = _watch(worker, WINDOW)
    _check_quiet(lines, None, WINDOW)


def test_case10_refusing_broker_after_serving_backs_off_then_recovers(node_pool):
    """Case 10: a worker served; its broker now closes every connection at once: few
    attempts, quiet log; once the broker accepts again, it serves again."""
    with TcpProxy(int(urlsplit(node_pool.broker_url).port)) as proxy:
        worker = node_pool.start(url=proxy.url(node_pool.broker_url), threads=2)
        client = Client(url=f"{worker.system}/Hostile",
                        settings=settings_for(node_pool.broker_url))
        assert client.ping()["OK"]
        proxy.refuse(True)
        before = proxy.accepted
        proxy.cut()
        lines = _watch(worker, WINDOW)
        _check_quiet(lines, proxy.accepted - before, WINDOW)
        proxy.refuse(False)
        worker.wait_ready(count=2, timeout=40)
        assert client.ping()["OK"]
        assert_alive(worker, "the worker died")
        worker.stop()


@pytest.mark.parametrize("connected_first", [False, True], ids=["fresh", "connected"])
def test_case11_call_gets_through_when_the_broker_is_back_1s_before_its_deadline(
        hpool, vhost_url, connected_first):
    """Case 11: the client's broker is unreachable (a proxy refusing every connection);
    it comes back 1 s before the call's deadline; the call is answered OK."""
    worker = hpool.start(threads=2)
    timeout = 6.0
    with TcpProxy(int(urlsplit(vhost_url).port or 5672)) as proxy:
        client = Client(url=f"{worker.system}/Hostile",
                        settings=settings_for(proxy.url(vhost_url), rpc_timeout=timeout,
                                              connect_timeout=60))
        if connected_first:
            assert client.ping()["OK"]
        proxy.refuse(True)
        proxy.cut()
        outcome: dict = {}

        def call() -> None:
            started = time.monotonic()
            outcome["result"] = client.echo("through")
            outcome["elapsed"] = time.monotonic() - started

        caller = threading.Thread(target=call)
        started = time.monotonic()
        caller.start()
        # The broker's "return": at a point in time, not in answer to an event.
        time.sleep(max(0.0, started + timeout - 1.0 - time.monotonic()))
        proxy.refuse(False)
        caller.join(timeout + 5)
        assert not caller.is_alive(), "the call did not return"
    result = outcome["result"]
    assert result["OK"], (f"after {outcome['elapsed']:.1f}s of a {timeout:g}s call: "
                          f"{result.get('Message')}")
    assert outcome["elapsed"] <= timeout + 1
