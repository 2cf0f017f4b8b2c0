"""The worker's reply cache (workers/dedup.py): pure logic, no broker."""

import threading

from diracmq.workers.dedup import ReplyCache


def test_a_request_is_claimed_once_then_answered_from_the_cache():
    cache = ReplyCache()
    key = ("alice", "req-1")
    assert cache.begin(key) is None  # first copy: run it
    cache.finish(key, b"reply")
    assert cache.begin(key) == b"reply"  # a later copy: the same reply, not run again
    assert cache.begin(("bob", "req-1")) is None  # another user's id is another request


def test_a_copy_arriving_while_the_first_runs_waits_for_its_reply():
    cache = ReplyCache()
    key = ("alice", "req-2")
    assert cache.begin(key) is None
    claim = cache.begin(key)
    assert isinstance(claim, threading.Event) and not claim.is_set()
    cache.finish(key, b"done")
    assert claim.is_set()
    assert cache.begin(key) == b"done"


def test_the_cache_is_bounded_in_entries_and_in_bytes():
    cache = ReplyCache(size=3, max_bytes=8 * 1024)
    for i in range(5):
        cache.begin(("u", str(i)))
        cache.finish(("u", str(i)), b"x" * 10)
    assert cache.begin(("u", "0")) is None  # the oldest went first (3 entries at most)
    assert cache.begin(("u", "4")) == b"x" * 10

    big = ReplyCache(size=100, max_bytes=8 * 1024)
    for i in range(10):
        big.begin(("u", str(i)))
        big.finish(("u", str(i)), b"y" * 1024)  # 1 KiB each, 8 KiB budget
    assert big._bytes <= 8 * 1024
    assert big.begin(("u", "0")) is None and big.begin(("u", "9")) == b"y" * 1024


def test_a_reply_over_an_eighth_of_the_budget_is_not_kept():
    cache = ReplyCache(max_bytes=8 * 1024)
    cache.begin(("u", "huge"))
    cache.finish(("u", "huge"), b"z" * 2048)
    assert cache.begin(("u", "huge")) is None  # not remembered: a duplicate runs again


def test_each_entry_counts_its_bookkeeping_against_the_byte_budget():
    """Tiny replies are bounded too: 10,000 of them are not 10,000 x 12 bytes of memory."""
    from diracmq.workers.dedup import ENTRY_OVERHEAD

    cache = ReplyCache(size=10_000, max_bytes=100 * (ENTRY_OVERHEAD + 2))
    for i in range(500):
        cache.begin(("u", str(i)))
        cache.finish(("u", str(i)), b"ok")
    assert len(cache._replies) == 100
    assert cache._bytes == 100 * (ENTRY_OVERHEAD + 2)
    assert cache.begin(("u", "499")) == b"ok" and cache.begin(("u", "399")) is None
