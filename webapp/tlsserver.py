"""HTTPS with optional client certificates for ``dirac-webapp`` (uvicorn).

uvicorn verifies a browser's certificate against ``--client-ca`` during the TLS
handshake (``ssl.CERT_OPTIONAL``: a browser without a certificate still connects and
gets the password form; one with a certificate the CA did not sign fails the
handshake), but it does not pass the verified certificate to the application.
:class:`ClientCertH11Protocol` does: it is uvicorn's own HTTP/1.1 protocol, which, per
connection, adds the ASGI TLS extension (``scope["extensions"]["tls"]``, with the
client's certificate in ``client_cert_chain`` as PEM) to every request's scope.  Only
the server writes that value; nothing a client sends can set it.

:func:`client_subject` reads it back as the broker would name a certificate user (RFC
4514, broker/dn.py), the form the Registry maps to a DIRAC user.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from cryptography import x509
from diracmq.broker.dn import subject_to_rfc4514
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ClientCertH11Protocol", "client_subject"]


def _tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension of a connection, or None when it is plain HTTP."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    # Python exposes the verified peer's own certificate only (not its chain).
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    return {"server_cert": None, "client_cert_chain": chain,
            "client_cert_name": None, "client_cert_error": None,
            "tls_version": None, "cipher_suite": None}


class ClientCertH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that gives the application the client's TLS certificate."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Wrap this connection's application so each scope carries the TLS extension."""
        super().connection_made(transport)
        tls = _tls_extension(transport)
        if tls is None:
            return
        app = self.app

        async def with_tls(scope: Any, receive: Any, send: Any) -> None:
            scope = dict(scope)
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
            await app(scope, receive, send)

        self.app = with_tls  # type: ignore[assignment]


def client_subject(scope: dict[str, Any]) -> str | None:
    """The verified client certificate's subject in RFC 4514 form, or None if there is none."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    cert = x509.load_pem_x509_certificate(chain[0].encode("ascii"))
    return subject_to_rfc4514(cert.subject)
