"""dirac-worker --reply-cache-mb: a repeated request is answered from the cache, or run again."""

import pytest
from diracmq_testing import pack, unpack

pytestmark = pytest.mark.timeout(60)


def send_twice(raw, service):
    """The same request (same message_id) twice; both replies."""
    body = pack({"v": 1, "method": "echo", "args": ["once?"]})
    replies = []
    for _ in range(2):
        corr = raw.publish(service, body, corr_id="same-request-id")
        replies.append(unpack(raw.wait_reply(corr)[1]))
    return replies


def counters(raw, service):
    result = raw.call(service, "ping")
    assert result["OK"], result
    return result["Value"]["counters"]


@pytest.mark.parametrize("cache_mb, runs_again", [(None, False), ("0", True)])
def test_repeated_request(workers, raw, cache_mb, runs_again):
    args = [] if cache_mb is None else ["--reply-cache-mb", cache_mb]
    service = f"{workers.start(threads=2, args=args).system}/Dispatch"
    replies = send_twice(raw, service)
    assert replies == [{"OK": True, "Value": "once?"}] * 2  # both copies are answered
    seen = counters(raw, service)
    if runs_again:
        assert seen.get("duplicates", 0) == 0, seen
    else:
        assert seen["duplicates"] == 1, seen


def test_a_negative_budget_is_a_usage_error(workers):
    worker = workers.start(args=["--reply-cache-mb", "-1"], wait_ready=False)
    worker.expected_returncode = 2
    assert worker.wait() == 2
    assert "--reply-cache-mb must be 0 or more" in worker.stderr()
