"""Issue 11, case 12: a service whose workers all stopped is reported within
``no_worker_after`` seconds (``DIRAC_NO_WORKER_AFTER``, default 10), not at the
call's timeout (600 s by default)."""

from __future__ import annotations

import time

import pytest
from diracmq.broker.config import Settings
from diracmq.broker.derrno import EMQNOWORKER
from diracmq.client.base import Client
from diracmq_testing import environment

pytestmark = pytest.mark.timeout(120)

#: How late past ``no_worker_after`` the answer may come (thread wake-ups, a busy box).
SLACK = 2.0


def _stopped_service(hpool) -> str:
    """A service whose queue exists and has no consumer: its only worker was stopped."""
    worker = hpool.start(threads=1)
    assert worker.stop() == 0
    return f"{worker.system}/Hostile"


@pytest.mark.parametrize("no_worker_after", ["3", None], ids=["env-3s", "default"])
def test_case12_no_worker_is_reported_within_no_worker_after(hpool, vhost_url,
                                                             no_worker_after):
    """Case 12: with a 600 s call timeout, EMQNOWORKER comes within ``no_worker_after``
    (3 s from the environment; 10 s by default, 15 s at most as the issue asks)."""
    service = _stopped_service(hpool)
    with environment(DIRAC_NO_WORKER_AFTER=no_worker_after):
        settings = Settings.load(url=vhost_url, rpc_timeout=600.0)
    bound = float(no_worker_after or 15)
    started = time.monotonic()
    future = Client(url=service, settings=settings).submit("echo", "anyone?")
    try:
        result = future.result(timeout=bound + SLACK + 5)
    except TimeoutError:
        raise AssertionError(f"no answer within {bound + SLACK + 5:g}s of a 600s call to a "
                             f"service without workers") from None
    elapsed = time.monotonic() - started
    assert result.get("Errno") == EMQNOWORKER, result
    assert elapsed <= bound + SLACK, f"EMQNOWORKER after {elapsed:.1f}s (bound {bound:g}s)"
