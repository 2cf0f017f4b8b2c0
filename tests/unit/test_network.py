"""Unit tests for DIRAC.Core.Utilities.Network (name look-ups only)."""

import time

from DIRAC.Core.Utilities.Network import getIPsForHostName


def test_localhost():
    res = getIPsForHostName("localhost")
    assert res["OK"], res
    ips = res["Value"]
    assert "127.0.0.1" in ips or "::1" in ips
    assert len(ips) == len(set(ips))


def test_ip_literal():
    assert getIPsForHostName("127.0.0.1") == {"OK": True, "Value": ["127.0.0.1"]}


def test_empty_name_as_documented():
    assert getIPsForHostName("") == {"OK": True, "Value": [""]}


def test_invalid_tld_fails_fast():
    start = time.monotonic()
    res = getIPsForHostName("fake-domain.invalid")
    assert time.monotonic() - start < 1
    assert res["OK"] is False
    assert res["Message"].startswith("Can't get info for host fake-domain.invalid: ")
    assert getIPsForHostName("FAKE.Invalid.")["OK"] is False


def test_bad_name_is_an_error_not_an_exception():
    res = getIPsForHostName("x" * 300)
    assert res["OK"] is False
    assert res["Message"].startswith("Can't get info for host ")
