"""Client.submit: many calls in flight from one thread, each a future of its S_OK/S_ERROR."""

import dataclasses
import errno
import threading

import pytest
from diracmq.broker.derrno import EMQENCODE, EMQNOQUEUE, EMQNOWORKER
from diracmq.client import transport
from diracmq.client.base import Client
from diracmq_testing import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def system(module_workers):
    return module_workers.start(threads=8).system


@pytest.mark.parametrize("reply_mode", ["queue", "direct"])
def test_300_futures_from_one_thread(system, settings, reply_mode):
    settings = dataclasses.replace(settings, reply_mode=reply_mode)
    client = Client(url=f"{system}/Dispatch", settings=settings, timeout=30)
    futures = [client.submit("echo", {"n": n, "pad": "x" * (n % 50)}) for n in range(300)]
    # Answered in any order; each future has its own reply.
    for n, future in reversed(list(enumerate(futures))):
        assert future.result() == {"OK": True, "Value": {"n": n, "pad": "x" * (n % 50)}}
        assert future.done()
    assert transport.get_transport(settings).late_replies == 0


def test_requests_are_sent_at_submit_and_replies_read_without_waiting(system, settings):
    """submit() publishes at once; the idle I/O thread collects the replies meanwhile."""
    client = Client(url=f"{system}/Work", settings=settings, timeout=30)
    futures = [client.submit("echoSlow", i, 0.2) for i in range(4)]
    # The four run in parallel on the worker (8 threads): all are done well before
    # 4 x 0.2 s would pass one after another, without anyone calling result().
    wait_until(lambda: all(f.done() for f in futures), 5, "futures done without result()")
    assert [f.result()["Value"] for f in futures] == [0, 1, 2, 3]


def test_result_with_a_timeout_raises_and_can_be_asked_again(system, settings):
    client = Client(url=f"{system}/Work", settings=settings, timeout=30)
    future = client.submit("echoSlow", "late", 1.0)
    with pytest.raises(TimeoutError, match="still waiting"):
        future.result(timeout=0.1)
    assert not future.done()
    assert future.result() == {"OK": True, "Value": "late"}


def test_futures_and_blocking_calls_from_many_threads(system, settings):
    client = Client(url=f"{system}/Dispatch", settings=settings, timeout=30)
    errors = []

    def work(i):
        try:
            futures = [client.submit("echoArgs", i, k) for k in range(20)]
            assert client.echo(i) == {"OK": True, "Value": i}
            for k, future in enumerate(futures):
                assert future.result() == {"OK": True, "Value": [i, k]}
        except BaseException as exc:
            errors.append((i, repr(exc)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads) and not errors, errors[:3]


def test_one_future_waited_for_by_two_threads(system, settings):
    client = Client(url=f"{system}/Work", settings=settings, timeout=30)
    future = client.submit("echoSlow", "shared", 0.3)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(future.result())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [{"OK": True, "Value": "shared"}] * 2


def test_errors_come_back_as_results(system, settings):
    client = Client(url=f"{system}/Dispatch", settings=settings, timeout=30)
    unencodable = client.submit("echo", object())
    assert unencodable.done() and unencodable.result()["Errno"] == EMQENCODE
    unknown = client.submit("noSuchMethod")
    assert not unknown.result()["OK"]
    assert unknown.result()["Message"] == "Unknown method noSuchMethod"
    bad_timeout = client.submit("echo", 1, timeout=0)
    assert bad_timeout.result()["Errno"] == errno.EINVAL
    no_queue = Client(url=f"{system}Missing/Nothing", settings=settings).submit("echo", 1)
    assert no_queue.result()["Errno"] == EMQNOQUEUE


def test_future_past_its_deadline(module_workers, settings):
    """A queue nobody consumes: the future's result is the blocking call's timeout error."""
    idle = module_workers.start(threads=1)
    system = idle.system
    client = Client(url=f"{system}/Work", settings=settings, timeout=1.0)
    assert client.pid()["OK"]  # the queue exists ...
    idle.stop()  # ... and from now on nobody consumes it
    future = client.submit("pid")
    result = future.result()
    assert not result["OK"] and result["Errno"] in (EMQNOWORKER, errno.ETIMEDOUT), result
