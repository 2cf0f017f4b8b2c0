"""Failures on the calling side become S_ERROR results with documented errnos, never hangs."""

import errno
import threading
import time

import pytest
from diracmq.broker.config import Settings
from diracmq.client import transport
from diracmq.client.base import Client
from diracmq_testing import free_closed_port, wait_until

pytestmark = pytest.mark.timeout(60)

EMQCONN, EMQNOQUEUE, EMQENCODE = 1142, 1143, 1146


@pytest.fixture(scope="module")
def system(module_workers):
    return module_workers.start(threads=4).system


def assert_no_queue_error_at_once(settings):
    started = time.monotonic()
    result = Client(url="NoSuchSystem/NoSuchService", settings=settings, timeout=5).ping()
    elapsed = time.monotonic() - started
    assert result["OK"] is False
    assert result["Errno"] == EMQNOQUEUE, result
    assert "NoSuchSystem/NoSuchService" in result["Message"]
    assert elapsed < 2, f"took {elapsed:.1f}s: the unroutable request should fail at once"


def test_service_without_queue(system, settings):
    """Another System's worker runs (so the request exchange exists): no queue -> EMQNOQUEUE."""
    assert_no_queue_error_at_once(settings)
    # and the connection is still good for the next call
    assert Client(url=f"{system}/Dispatch", settings=settings).echo(1)["OK"]


def test_service_without_queue_on_a_fresh_broker(fresh_vhost_url):
    """No worker ever ran on this broker/vhost, so even the request exchange is missing."""
    settings = Settings.load(url=fresh_vhost_url, rpc_timeout=30.0, connect_timeout=5.0)
    assert_no_queue_error_at_once(settings)


def test_timeout(system, settings):
    client = Client(url=f"{system}/Work", settings=settings)
    started = time.monotonic()
    result = client.sleep(4, timeout=1)
    elapsed = time.monotonic() - started
    assert result["OK"] is False
    assert result["Errno"] == errno.ETIMEDOUT, result
    assert f"{system}/Work.sleep" in result["Message"]
    assert 0.9 <= elapsed < 3, f"returned after {elapsed:.2f}s for timeout=1"


def test_late_reply_is_dropped_and_never_crosses_to_the_next_call(system, settings):
    client = Client(url=f"{system}/Work", settings=settings)
    assert client.echoSlow("late", 1.5, timeout=0.5)["Errno"] == errno.ETIMEDOUT
    rpc = transport.get_transport(settings)
    before = rpc.late_replies
    # The next calls get their own replies, before and after the late one arrives.
    for i in range(30):
        assert client.echoSlow(i, 0.05, timeout=10) == {"OK": True, "Value": i}
    wait_until(lambda: rpc.late_replies > before, 10, "the late reply to be counted and dropped")
    assert client.echoSlow("after", 0, timeout=10) == {"OK": True, "Value": "after"}


def test_client_default_timeout_and_setTimeout(system, settings):
    client = Client(url=f"{system}/Work", settings=settings, timeout=0.5)
    assert client.sleep(3)["Errno"] == errno.ETIMEDOUT
    client.setTimeout(10)
    assert client.sleep(0.1)["OK"]


def test_settings_rpc_timeout_is_the_default(system, settings):
    import dataclasses

    quick = dataclasses.replace(settings, rpc_timeout=0.5)
    started = time.monotonic()
    assert Client(url=f"{system}/Work", settings=quick).sleep(3)["Errno"] == errno.ETIMEDOUT
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("timeout", [0, -1])
def test_bad_timeout(system, settings, timeout):
    result = Client(url=f"{system}/Work", settings=settings).pid(timeout=timeout)
    assert result["OK"] is False and result["Errno"] == errno.EINVAL


def test_unreachable_broker():
    url = f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F"
    settings = Settings.load(url=url, connect_timeout=1.0, rpc_timeout=30.0)
    started = time.monotonic()
    result = Client(url="Any/Service", settings=settings).ping()
    elapsed = time.monotonic() - started
    assert result["OK"] is False
    assert result["Errno"] == EMQCONN, result
    assert result["Message"].startswith("MQ connection failure ( 1142 : ")
    assert elapsed < 4, f"took {elapsed:.1f}s with connect_timeout=1"


def test_unreachable_broker_from_many_threads():
    url = f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F"
    settings = Settings.load(url=url, connect_timeout=1.0, rpc_timeout=30.0)
    client = Client(url="Any/Service", settings=settings)
    results = [None] * 8

    def call(i):
        results[i] = client.ping()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert time.monotonic() - started < 8
    assert all(r is not None and r["Errno"] == EMQCONN for r in results), results


def test_wrong_password_fails_without_retrying(vhost_url):
    url = vhost_url.replace("guest:guest@", "guest:wrong-password@", 1)
    if url == vhost_url:
        pytest.skip("the broker URL does not use guest:guest")
    settings = Settings.load(url=url, connect_timeout=10.0)
    started = time.monotonic()
    result = Client(url="Any/Service", settings=settings).ping()
    assert result["Errno"] == EMQCONN, result
    assert time.monotonic() - started < 5, "an authentication failure is not worth retrying"


def test_unencodable_argument(system, settings):
    client = Client(url=f"{system}/Dispatch", settings=settings)
    result = client.echo(object())
    assert result["OK"] is False
    assert result["Errno"] == EMQENCODE, result
    assert client.echo({"fine": 1}) == {"OK": True, "Value": {"fine": 1}}


@pytest.mark.parametrize("url", ["not a service", "NoSlash", "Too/Many/Parts", "/Service",
                                 "System/", "1System/Service", "Sys tem/Service"])
def test_bad_service_name(settings, url):
    result = Client(url=url, settings=settings).ping()
    assert result["OK"] is False and result["Errno"] == errno.EINVAL, result
    assert "invalid service name" in result["Message"]


def test_no_service_set(settings):
    result = Client(settings=settings).ping()
    assert result["OK"] is False and result["Errno"] == errno.EINVAL


def test_dips_url_is_accepted(system, settings):
    client = Client(url=f"dips://some.host:9130/{system}/Dispatch", settings=settings)
    assert client.echo(1) == {"OK": True, "Value": 1}


def test_keyword_arguments_other_than_timeout(system, settings):
    client = Client(url=f"{system}/Dispatch", settings=settings)
    with pytest.raises(TypeError):
        client.echo(data=1)
    with pytest.raises(TypeError):
        client.echo(1, timeout=5, extra=2)
    assert client.echo(1, timeout=5) == {"OK": True, "Value": 1}


def test_closed_transport_reconnects_on_next_call(system, settings):
    client = Client(url=f"{system}/Dispatch", settings=settings)
    assert client.echo(1)["OK"]
    transport.close_all()
    assert client.echo(2) == {"OK": True, "Value": 2}
