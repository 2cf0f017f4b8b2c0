"""getProxyInfo's ``secondsLeft`` from a certificate named in the environment."""

import shutil
import subprocess

import pytest

from DIRAC.Core.Security.ProxyInfo import _certificateSecondsLeft


@pytest.fixture
def certificate(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a test certificate")
    cert, key = tmp_path / "usercert.pem", tmp_path / "userkey.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=alice", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert


def test_seconds_left_of_the_certificate(certificate, monkeypatch):
    monkeypatch.delenv("X509_USER_PROXY", raising=False)
    monkeypatch.setenv("X509_USER_CERT", str(certificate))
    path, seconds = _certificateSecondsLeft()
    assert path == str(certificate)
    assert 86400 < seconds <= 2 * 86400


def test_unreadable_certificate_counts_as_expired(tmp_path, monkeypatch):
    bogus = tmp_path / "proxy.pem"
    bogus.write_text("not a certificate")
    monkeypatch.setenv("X509_USER_PROXY", str(bogus))
    assert _certificateSecondsLeft() == (str(bogus), 0)


def test_no_certificate(monkeypatch):
    monkeypatch.delenv("X509_USER_PROXY", raising=False)
    monkeypatch.delenv("X509_USER_CERT", raising=False)
    assert _certificateSecondsLeft() == (None, None)
