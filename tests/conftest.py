"""Fixtures shared by every test: the real broker, per-module vhosts, workers, raw AMQP.

Which broker (reported in the header and the summary of every run):

1. ``DIRAC_BROKER_URL`` when it is set (it must accept a login, else the tests fail);
2. else the local broker on 127.0.0.1:5672 when a TCP connect and an AMQP login
   (guest/guest) work;
3. else a RabbitMQ container through testcontainers (Docker needed; without Docker the
   broker fixture fails at once with a message saying what was tried).

``DIRACMQ_TEST_BROKER=testcontainers`` skips 1 and 2.

Isolation: when ``rabbitmqctl`` manages that broker (local, or in the container), each
test module gets its own vhost, deleted after the module.  rabbitmqctl costs about 1 s
a call (2-4 s per vhost on a busy 2-core machine), so there is one vhost per module,
not per test, and a background thread makes them ahead of need while tests run.
Within a module, every worker a test starts serves the test extension's handlers
under a fresh System name (``WorkerPool.new_system``), so no two tests share a queue.
Without rabbitmqctl (or with ``DIRACMQ_TEST_VHOSTS=0``) everything runs in the URL's
vhost, and the idle, empty queues of the workers a test started are deleted after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from diracmq_testing import (
    Broker,
    BrokerUnavailable,
    RawRPC,
    Vhosts,
    WorkerPool,
    amqp_login,
    start_testcontainer,
    tcp_open,
    url_with_vhost,
    usable_rabbitmqctl,
)

LOCAL_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

_broker_key = pytest.StashKey[object]()
_vhosts_key = pytest.StashKey[object]()
#: Why the local broker was not used although its port was open (for the failure message).
_local_failure: list[str] = []


def _find_broker(config: pytest.Config) -> Broker | BrokerUnavailable | None:
    """The broker to use, an error to report, or None for "try testcontainers"."""
    if _broker_key in config.stash:
        return config.stash[_broker_key]  # type: ignore[return-value]
    found: Broker | BrokerUnavailable | None
    if os.environ.get("DIRACMQ_TEST_BROKER") == "testcontainers":
        found = None
    elif os.environ.get("DIRAC_BROKER_URL"):
        url = os.environ["DIRAC_BROKER_URL"]
        try:
            amqp_login(url)
            found = Broker("DIRAC_BROKER_URL", url)
        except Exception as exc:
            found = BrokerUnavailable(f"DIRAC_BROKER_URL is set but no AMQP login works "
                                      f"there: {exc!r}")
    elif tcp_open("127.0.0.1", 5672):
        try:
            amqp_login(LOCAL_URL)
            found = Broker("local", LOCAL_URL)
        except Exception as exc:
            found = None
            _local_failure.append(repr(exc))
    else:
        found = None
    if isinstance(found, Broker):
        found.ctl = usable_rabbitmqctl(found)
    config.stash[_broker_key] = found
    return found


def pytest_report_header(config: pytest.Config) -> str:
    found = _find_broker(config)
    if isinstance(found, Broker):
        return f"diracmq broker: {found.describe()}"
    if isinstance(found, BrokerUnavailable):
        return f"diracmq broker: UNAVAILABLE: {found}"
    return "diracmq broker: testcontainers (started when a test first needs the broker)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    found = config.stash.get(_broker_key, None)
    if isinstance(found, Broker):
        line = f"diracmq broker used: {found.describe()}"
        vhosts = config.stash.get(_vhosts_key, None)
        if isinstance(vhosts, Vhosts) and vhosts.created:
            line += (f"; {len(vhosts.created)} vhosts made with {vhosts.create_seconds:.1f}s"
                     f" of rabbitmqctl, in the background")
            if vhosts.delete_failures:
                line += f"; FAILED to delete: {vhosts.delete_failures}"
        terminalreporter.write_line(line)


def _vhosts_needed(session: pytest.Session) -> int:
    """How many vhosts the selected tests will ask for: one per module, one per fresh test."""
    modules = {item.module.__name__ for item in session.items
               if "vhost_url" in getattr(item, "fixturenames", ()) and hasattr(item, "module")}
    fresh = sum("fresh_vhost_url" in getattr(item, "fixturenames", ()) for item in session.items)
    return len(modules) + fresh


@pytest.fixture(scope="session")
def broker(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Iterator[Broker]:
    """The session's broker (see the module docstring for how it is chosen)."""
    found = _find_broker(pytestconfig)
    if isinstance(found, BrokerUnavailable):
        pytest.fail(str(found), pytrace=False)
    started = None
    if found is None:
        if os.environ.get("DIRACMQ_TEST_BROKER") == "testcontainers":
            why = "DIRACMQ_TEST_BROKER=testcontainers"
        elif _local_failure:
            why = (f"DIRAC_BROKER_URL is not set and 127.0.0.1:5672 refused the AMQP login "
                   f"({_local_failure[0]})")
        else:
            why = "DIRAC_BROKER_URL is not set and nothing listens on 127.0.0.1:5672"
        failure = None
        try:
            found = started = start_testcontainer(why)
        except BrokerUnavailable as exc:
            failure = str(exc)
        if failure:
            pytest.fail(failure, pytrace=False)
        found.ctl = usable_rabbitmqctl(found)
        pytestconfig.stash[_broker_key] = found
    vhosts = None
    if found.ctl:
        vhosts = Vhosts(found.ctl, found.user, needed=_vhosts_needed(request.session))
        pytestconfig.stash[_vhosts_key] = vhosts
    try:
        yield found
    finally:
        if vhosts:
            vhosts.close()
        if started is not None:
            started.container.stop()


@pytest.fixture(scope="module")
def vhost_url(broker: Broker, request: pytest.FixtureRequest) -> Iterator[str]:
    """The AMQP URL for this test module: its own vhost when rabbitmqctl allows."""
    vhosts = request.config.stash.get(_vhosts_key, None)
    if not isinstance(vhosts, Vhosts):
        yield broker.url
        return
    name = vhosts.take()
    try:
        yield url_with_vhost(broker.url, name)
    finally:
        vhosts.delete_later(name)


@pytest.fixture
def fresh_vhost_url(broker: Broker, request: pytest.FixtureRequest) -> Iterator[str]:
    """A brand-new, empty vhost for one test (nothing declared yet: not even the exchange)."""
    vhosts = request.config.stash.get(_vhosts_key, None)
    if not isinstance(vhosts, Vhosts):
        pytest.skip("needs rabbitmqctl to create a vhost")
    name = vhosts.take()
    try:
        yield url_with_vhost(broker.url, name)
    finally:
        vhosts.delete_later(name)


@pytest.fixture(scope="module")
def private_vhost(request: pytest.FixtureRequest) -> bool:
    return isinstance(request.config.stash.get(_vhosts_key, None), Vhosts)


@pytest.fixture(scope="module")
def settings(vhost_url: str):
    """Client settings for this module's broker URL (bounded timeouts, for tests)."""
    from diracmq.broker.config import Settings

    return Settings.load(url=vhost_url, rpc_timeout=30.0, connect_timeout=5.0)


@pytest.fixture(autouse=True)
def _close_transports() -> Iterator[None]:
    """Every test ends with the client connections of this process closed."""
    yield
    from diracmq.client import transport

    transport.close_all()


def _stop_pool(pool: WorkerPool) -> None:
    problems = pool.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def workers(vhost_url: str, private_vhost: bool, tmp_path) -> Iterator[WorkerPool]:
    """Start ``dirac-worker`` processes in a test; each must exit 0 on SIGTERM at teardown."""
    pool = WorkerPool(vhost_url, tmp_path, private_vhost)
    yield pool
    _stop_pool(pool)


@pytest.fixture(scope="module")
def module_workers(vhost_url: str, private_vhost: bool, tmp_path_factory) -> Iterator[WorkerPool]:
    """Like ``workers``, shared by a module's tests (for stateless checks)."""
    pool = WorkerPool(vhost_url, tmp_path_factory.mktemp("workers"), private_vhost)
    yield pool
    _stop_pool(pool)


@pytest.fixture
def raw(vhost_url: str) -> Iterator[RawRPC]:
    """A bare pika requester on this module's broker URL."""
    rpc = RawRPC(vhost_url)
    yield rpc
    rpc.close()
