"""Many threads calling through one client at once: each gets its own reply."""

import dataclasses
import threading

import pytest
from diracmq.client import transport
from diracmq.client.base import Client

pytestmark = pytest.mark.timeout(120)

THREADS = 50
CALLS_PER_THREAD = 5


@pytest.fixture(scope="module")
def system(module_workers):
    return module_workers.start(threads=8).system


def run_threads(target, count=THREADS):
    barrier = threading.Barrier(count)
    errors = []

    def run(i):
        try:
            barrier.wait(10)
            target(i)
        except BaseException as exc:  # reported below, with the thread number
            errors.append((i, repr(exc)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "some threads never got their reply"
    assert not errors, errors[:5]


@pytest.mark.parametrize("reply_mode", ["queue", "direct"])
def test_50_threads_one_client(system, settings, reply_mode):
    settings = dataclasses.replace(settings, reply_mode=reply_mode)
    client = Client(url=f"{system}/Dispatch", settings=settings, timeout=30)
    results = {}

    def work(i):
        for n in range(CALLS_PER_THREAD):
            payload = {"thread": i, "call": n, "data": (i, n, "x" * (i * 37 % 500))}
            result = client.echo(payload)
            assert result == {"OK": True, "Value": payload}, (i, n, result)
            results[(i, n)] = result["Value"]

    run_threads(work)
    assert len(results) == THREADS * CALLS_PER_THREAD
    assert transport.get_transport(settings).late_replies == 0


def test_50_threads_with_slow_calls_overlap(system, settings):
    """Slow calls are in flight together: replies come out of order and still match."""
    client = Client(url=f"{system}/Work", settings=settings, timeout=30)
    results = {}

    def work(i):
        delay = (THREADS - i) % 5 * 0.05  # later-started calls may finish first
        result = client.echoSlow({"i": i}, delay)
        assert result == {"OK": True, "Value": {"i": i}}, (i, result)
        results[i] = result

    run_threads(work)
    assert len(results) == THREADS


def test_threads_with_different_clients_and_services(system, settings):
    """Clients of two services, shared by threads: one connection serves them all."""
    dispatch = Client(url=f"{system}/Dispatch", settings=settings, timeout=30)
    work = Client(url=f"{system}/Work", settings=settings, timeout=30)

    def call(i):
        if i % 2:
            assert dispatch.echoArgs(i, str(i)) == {"OK": True, "Value": [i, str(i)]}
        else:
            assert work.echoSlow([i], 0.01) == {"OK": True, "Value": [i]}

    run_threads(call, 20)
