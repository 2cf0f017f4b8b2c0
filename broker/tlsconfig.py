"""TLS for ``amqps://`` URLs: which certificate, key and CAs, and who that makes us.

A user logs in with a certificate instead of a password (RabbitMQ's EXTERNAL mechanism,
docs/security.md): the broker user is then the certificate subject in RFC 4514 form.
The files are found as DIRAC finds them, first match wins:

* certificate and key: ``tls_cert``/``tls_key`` settings (``DIRAC_TLS_CERT``/``_KEY``);
  else ``X509_USER_PROXY`` (one PEM file holding certificate, key and chain); else
  ``X509_USER_CERT`` + ``X509_USER_KEY``; else DIRAC's default proxy
  ``/tmp/x509up_u<uid>``; else ``~/.globus/usercert.pem`` + ``userkey.pem``.
  None of them: TLS without a client certificate (a password URL over TLS).
* trusted CAs: ``tls_ca`` (``DIRAC_TLS_CA``, a PEM file or a directory); else
  ``X509_CERT_DIR``; else ``/etc/grid-security/certificates`` when it exists; else the
  system's CAs.  Every ``*.pem``/``*.crt``/``*.<digit>`` file of a directory is loaded
  (no ``c_rehash`` needed).

The broker's certificate is verified and its host name checked against the URL's host.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import ssl
from pathlib import Path

from diracmq.broker import dn
from diracmq.broker.config import Settings

__all__ = ["CertificateInfo", "TLSFiles", "certificate_info", "find_tls_files", "ssl_context"]


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """Where the client certificate, its key and the trusted CAs are (None: not found)."""

    cert: Path | None
    key: Path | None
    ca: Path | None


def _file(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def find_tls_files(settings: Settings) -> TLSFiles:
    """The certificate, key and CA location ``settings`` and the environment select."""
    env = os.environ
    cert = key = None
    if settings.tls_cert:
        cert = _file(settings.tls_cert)
        key = _file(settings.tls_key) or cert
    elif env.get("X509_USER_PROXY"):
        cert = key = _file(env["X509_USER_PROXY"])
    elif env.get("X509_USER_CERT"):
        cert = _file(env["X509_USER_CERT"])
        key = _file(env.get("X509_USER_KEY")) or cert
    else:
        default_proxy = Path(f"/tmp/x509up_u{os.getuid()}")
        globus = Path("~/.globus").expanduser()
        if default_proxy.is_file():
            cert = key = default_proxy
        elif (globus / "usercert.pem").is_file() and (globus / "userkey.pem").is_file():
            cert, key = globus / "usercert.pem", globus / "userkey.pem"
    ca = _file(settings.tls_ca) or _file(env.get("X509_CERT_DIR"))
    if ca is None and Path("/etc/grid-security/certificates").is_dir():
        ca = Path("/etc/grid-security/certificates")
    for what, path in (("certificate", cert), ("key", key), ("CA location", ca)):
        if path is not None and not path.exists():
            raise FileNotFoundError(f"TLS {what} {path} does not exist")
    return TLSFiles(cert, key, ca)


_CA_FILE = re.compile(r".*\.(pem|crt|[0-9])$")


def ssl_context(settings: Settings, files: TLSFiles | None = None) -> ssl.SSLContext:
    """A client context: verify the broker against the CAs, present our certificate."""
    files = files or find_tls_files(settings)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if files.ca is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # only the CAs we were given
        if files.ca.is_dir():
            for path in sorted(files.ca.iterdir()):
                if _CA_FILE.match(path.name) and path.is_file():
                    context.load_verify_locations(cafile=str(path))
        else:
            context.load_verify_locations(cafile=str(files.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if files.cert is not None:
        context.load_cert_chain(str(files.cert), str(files.key or files.cert))
    return context


@dataclasses.dataclass(frozen=True)
class CertificateInfo:
    """What ``whoami``/``dirac-proxy-info`` show about the certificate in use."""

    path: str
    #: The broker's name for it (RFC 4514, RabbitMQ's spelling): the broker user.
    subject: str
    #: The same in DIRAC's slash form (the Registry's ``DN``).
    dn: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime

    @property
    def seconds_left(self) -> int:
        """Seconds until the certificate expires (0 once it has)."""
        now = datetime.datetime.now(datetime.UTC)
        return max(0, int((self.not_after - now).total_seconds()))


def certificate_info(path: Path | str) -> CertificateInfo:
    """Read the first certificate of a PEM file (a proxy's or a user's)."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    subject = dn.subject_to_rfc4514(cert.subject)
    return CertificateInfo(path=str(path), subject=subject, dn=dn.rfc4514_to_dirac(subject),
                           issuer=dn.rfc4514_to_dirac(dn.subject_to_rfc4514(cert.issuer)),
                           not_before=cert.not_valid_before_utc,
                           not_after=cert.not_valid_after_utc)
