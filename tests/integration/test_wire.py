"""How our frames leave the process: one syscall per request, one per reply and its ack.

pika writes a publish as three frames (method, header, body) and an ack as one;
broker.gather hands a loop turn's frames to the kernel together.  This checks it on
real connections to the broker: the client and a Worker run in this process, and every
gathered send is recorded with the thread that made it.
"""

import threading
import uuid

import pytest
from diracmq_testing import EXT_DIR

from broker import gather
from client.base import Client
from workers.loader import load_handlers
from workers.server import Worker

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


def test_a_request_and_a_reply_with_its_ack_each_leave_in_one_send(settings, sends,
                                                                   monkeypatch):
    monkeypatch.syspath_prepend(str(EXT_DIR))  # the diractest extension's handlers
    service = f"Wire{uuid.uuid4().hex[:8]}/Dispatch"
    handler = load_handlers("Test", ["diractest"], ["Dispatch"])["Test/Dispatch"]
    worker = Worker({service: handler}, settings, threads=4, graceful_timeout=5.0, name="wire")
    serving = threading.Thread(target=worker.run, name="wire-worker", daemon=True)
    serving.start()
    try:
        assert worker.ready.wait(20), "the worker did not start consuming"
        client = Client(url=service, settings=settings, timeout=20)
        assert client.echo("warm-up") == {"OK": True, "Value": "warm-up"}  # connects, declares
        sends.clear()
        for n in range(40):
            assert client.echo(n) == {"OK": True, "Value": n}
        mine = threading.current_thread().name
        requests = [frames for thread, frames in sends if thread == mine]
        replies = [frames for thread, frames in sends if thread != mine]
        # method + header + body frames of each request, in one sendmsg each
        assert requests == [3] * 40
        # each reply (method + header + body) with the request's ack: one sendmsg each
        assert replies == [4] * 40
    finally:
        worker.stop()
        serving.join(10)
    assert not serving.is_alive()
