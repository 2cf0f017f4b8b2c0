"""How our bytes move: one syscall per request, one per reply and its ack, one read each;
large messages reuse their memory.

A publish is three frames (method, header, body), joined by broker.frames, and an ack
one; broker.gather hands a loop turn's frames to the kernel together.  This checks it on
real connections to the broker: the client and a Worker run in this process, and every
gathered send is recorded with the thread that made it.  broker.allocator keeps the
buffers of a large call for the next one: checked in client processes of their own.
"""

import contextlib
import os
import platform
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator

import pytest
from diracmq.broker import gather
from diracmq.client.base import Client
from diracmq.workers.loader import load_handlers
from diracmq.workers.server import Worker
from diracmq_testing import EXT_DIR
from pika.adapters.utils import io_services_utils

pytestmark = pytest.mark.timeout(60)

HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"  # pika may send one at any time


@pytest.fixture
def sends(monkeypatch):
    """(thread name, buffers per sendmsg) of every gathered send from now on."""
    record: list[tuple[str, int]] = []
    real = gather.send_gathered

    def recording(sock, buffers):
        if list(buffers) != [HEARTBEAT]:
            record.append((threading.current_thread().name, len(buffers)))
        return real(sock, buffers)

    monkeypatch.setattr(gather, "send_gathered", recording)
    return record


@contextlib.contextmanager
def worker_and_client(settings, monkeypatch) -> Iterator[Client]:
    """A Worker serving the diractest Dispatch handler in thread ``wire-worker`` of this
    process, and a Client of it that has made one call (connected, declared); the
    worker is stopped, and must have exited, on the way out."""
    monkeypatch.syspath_prepend(str(EXT_DIR))  # the diractest extension's handlers
    service = f"Wire{uuid.uuid4().hex[:8]}/Dispatch"
    handler = load_handlers("Test", ["diractest"], ["Dispatch"])["Test/Dispatch"]
    worker = Worker({service: handler}, settings, threads=4, graceful_timeout=5.0, name="wire")
    serving = threading.Thread(target=worker.run, name="wire-worker", daemon=True)
    serving.start()
    try:
        assert worker.ready.wait(20), "the worker did not start consuming"
        client = Client(url=service, settings=settings, timeout=20)
        assert client.echo("warm-up") == {"OK": True, "Value": "warm-up"}
        yield client
    finally:
        worker.stop()
        serving.join(10)
    assert not serving.is_alive()


def test_a_request_and_a_reply_with_its_ack_each_leave_in_one_send(settings, sends,
                                                                   monkeypatch):
    with worker_and_client(settings, monkeypatch) as client:
        sends.clear()
        for n in range(40):
            assert client.echo(n) == {"OK": True, "Value": n}
        mine = threading.current_thread().name
        requests = [frames for thread, frames in sends if thread == mine]
        replies = [frames for thread, frames in sends if thread != mine]
        # method + header + body frames of each request (joined by broker.frames), in
        # one sendmsg each
        assert requests == [1] * 40
        # each reply (its three frames joined) with the request's ack: one sendmsg each
        assert replies == [2] * 40


def test_messages_either_side_of_the_frame_size_round_trip(settings, monkeypatch):
    """broker.frames frames what fits in one body frame; pika splits what does not.  Both
    reach the worker and come back whole (RabbitMQ closes a connection that sends a
    malformed frame)."""
    from diracmq.broker import frames

    taken: list[bool] = []  # per publish: framed by broker.frames (True) or left to pika
    real = frames.publish

    def recording(*args):
        data = real(*args)
        taken.append(data is not None)
        return data

    monkeypatch.setattr(frames, "publish", recording)
    with worker_and_client(settings, monkeypatch) as client:
        for size in (0, 1, 130_000, 131_040, 131_060, 131_100, 400_000):
            value = "y" * size
            assert client.echo(value) == {"OK": True, "Value": value}, size
    assert True in taken and False in taken, taken


def test_requests_and_replies_are_read_without_a_recv_that_would_block(settings, monkeypatch):
    """pika's own reading ends every readable event with a recv() raising BlockingIOError;
    broker.gather stops at the short read that took a whole small message."""
    transport = io_services_utils._AsyncPlaintextTransport
    gather.install()  # what every PikaDriver does when it is made (once per process)
    assert transport._consume is gather.consume_until_short
    reads: list[tuple[str, bool]] = []  # (thread, ended in BlockingIOError)

    def recording(self):
        try:
            gather.consume_until_short(self)
        except BlockingIOError:
            reads.append((threading.current_thread().name, True))
            raise
        reads.append((threading.current_thread().name, False))

    monkeypatch.setattr(transport, "_consume", recording)
    with worker_and_client(settings, monkeypatch) as client:
        reads.clear()
        for n in range(40):
            assert client.echo(n) == {"OK": True, "Value": n}
    mine = threading.current_thread().name
    assert sum(1 for thread, _ in reads if thread == mine) >= 40  # each reply read here
    assert sum(1 for thread, _ in reads if thread == "wire-worker") >= 40  # each request
    assert [read for read in reads if read[1]] == [], reads


LARGE_CALLS = textwrap.dedent("""
    import resource, sys
    from diracmq.broker import allocator
    from diracmq.broker.config import Settings
    from diracmq.client.base import Client
    # Opt-in for a client process (a worker does it itself): creating a Client changes
    # nothing process-wide.
    allocator.keep_freed_memory(Settings.load().malloc_keep_mb)
    client = Client(url=sys.argv[1], timeout=20)
    value = "x" * (1 << 20)
    for _ in range(3):
        assert client.echo(value) == {"OK": True, "Value": value}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        assert client.echo(value) == {"OK": True, "Value": value}
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
""")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_client_reuses_the_memory_of_large_calls(module_workers, vhost_url):
    """1 MB echo calls: page faults per call with the default setting and with it off."""
    service = f"{module_workers.start().system}/Dispatch"

    def faults_per_call(keep_mb: str) -> float:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIRAC_")}
        # glibc's starting threshold, fixed: left to itself glibc raises it after the
        # first large free, and whether later calls fault then depends on the order of
        # their allocations and frees (a run gave 0.1 faults per call without the
        # setting).  The setting's mallopt() overrides this, as it does glibc's default.
        env.update(DIRAC_BROKER_URL=vhost_url, DIRAC_MALLOC_KEEP_MB=keep_mb,
                   MALLOC_MMAP_THRESHOLD_="131072")
        done = subprocess.run([sys.executable, "-c", LARGE_CALLS, service], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return float(done.stdout)

    kept, given_back = faults_per_call("64"), faults_per_call("0")
    # Without it each call maps and faults in its ~5 MB of buffers again; with it 0-30.
    assert given_back > 100, given_back
    assert kept < given_back / 4, (kept, given_back)
