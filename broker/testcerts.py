"""Test certificates: a CA, a broker host certificate, user certificates (not for production).

``dirac-make-test-certs DIR --user alice --user bob`` writes into DIR:

* ``ca.pem`` / ``ca.key``: a self-signed CA (``/DC=org/DC=diracmq-test/CN=Test CA``);
* ``host.pem`` / ``host.key``: the broker's certificate for ``localhost`` and
  ``127.0.0.1`` (and ``--host`` names), signed by the CA;
* ``<user>.pem``: a user's certificate *and* key in one file, like a DIRAC proxy file
  (use it as ``X509_USER_PROXY``), subject ``/DC=org/DC=diracmq-test/CN=<user>``;
* ``certificates/``: the CA alone, for ``X509_CERT_DIR``.

It prints each user's DN in DIRAC's slash form and as the broker will name it.  The
certificates use the ``cryptography`` library; keys are unencrypted EC P-256.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from diracmq.broker import dn

__all__ = ["Authority", "main", "name_of"]

_BASE = [(NameOID.DOMAIN_COMPONENT, "org"), (NameOID.DOMAIN_COMPONENT, "diracmq-test")]


def name_of(rdns: Sequence[Sequence[tuple[x509.ObjectIdentifier, str]]]) -> x509.Name:
    """An x509 Name from RDNs in certificate order; an RDN of several pairs is multi-valued."""
    return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(o, v) for o, v in rdn])
                      for rdn in rdns])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Authority:
    """A test CA that issues host and user certificates."""

    def __init__(self, common_name: str = "Test CA", days: int = 3650) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = name_of([*([p] for p in _BASE), [(NameOID.COMMON_NAME, common_name)]])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256()))

    def ca_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, subject: x509.Name, *, hosts: Sequence[str] = (),
              not_before: datetime.datetime | None = None,
              not_after: datetime.datetime | None = None) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for ``subject``; ``hosts``: a server certificate."""
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - datetime.timedelta(minutes=5))
            .not_valid_after(not_after or now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                if hosts else [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if hosts:
            alt: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    alt.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)

    def user(self, common_name: str, **kw: object) -> bytes:
        """A user's certificate and key in one PEM (a proxy-style file)."""
        subject = name_of([*([p] for p in _BASE), [(NameOID.COMMON_NAME, common_name)]])
        cert, key = self.issue(subject, **kw)  # type: ignore[arg-type]
        return cert + key


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def main(argv: Sequence[str] | None = None) -> int:
    """``dirac-make-test-certs DIR``: a test CA, a host certificate and user certificates."""
    parser = argparse.ArgumentParser(
        prog="dirac-make-test-certs",
        description="Make a test CA, a broker host certificate (localhost, 127.0.0.1) and "
                    "user certificates in DIR, for trying TLS and certificate login locally. "
                    "Not for production.")
    parser.add_argument("dir", type=Path, help="where to write the files (created)")
    parser.add_argument("--user", action="append", default=[], metavar="CN",
                        help="a user certificate with this common name (repeatable; "
                             "default: alice)")
    parser.add_argument("--host", action="append", default=[], metavar="NAME",
                        help="another name or IP for the host certificate (repeatable)")
    parser.add_argument("--days", type=int, default=365, help="user/host validity (365)")
    args = parser.parse_args(argv)
    out: Path = args.dir
    (out / "certificates").mkdir(parents=True, exist_ok=True)
    ca = Authority()
    _write(out / "ca.pem", ca.ca_pem())
    _write(out / "certificates" / "ca.pem", ca.ca_pem())
    _write(out / "ca.key", _pem_key(ca.key), private=True)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=args.days)
    hosts = ["localhost", "127.0.0.1", *args.host]
    cert, key = ca.issue(name_of([*([p] for p in _BASE), [(NameOID.COMMON_NAME, hosts[-1]
                                                             if args.host else "localhost")]]),
                         hosts=hosts, not_after=until)
    _write(out / "host.pem", cert)
    _write(out / "host.key", key, private=True)
    # The broker reads host.key as another user when it runs as 'rabbitmq'.
    (out / "host.key").chmod(0o644)
    for user in args.user or ["alice"]:
        pem = ca.user(user, not_after=until)
        _write(out / f"{user}.pem", pem, private=True)
        subject = dn.subject_to_rfc4514(x509.load_pem_x509_certificate(pem).subject)
        print(f"{out / (user + '.pem')}: DN {dn.rfc4514_to_dirac(subject)}  "
              f"(broker user {subject!r})")
    print(f"CA: {out / 'ca.pem'}  (X509_CERT_DIR={out / 'certificates'})")
    print(f"broker: certfile {out / 'host.pem'}, keyfile {out / 'host.key'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
