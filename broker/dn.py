"""Distinguished names: RabbitMQ's RFC 4514 strings <-> DIRAC's slash form, exactly.

A certificate's subject is a sequence of RDNs (relative distinguished names), each a set
of one or more ``attribute=value`` pairs.  Two spellings of it meet here:

* **RFC 4514**, what RabbitMQ's ``rabbitmq_auth_mechanism_ssl`` makes the broker user
  name (``ssl_cert_login_from = distinguished_name``): RDNs in *reverse* certificate
  order, joined by ``,``; the pairs of a multi-valued RDN joined by ``+``; special
  characters escaped with ``\\``: ``CN=alice,DC=example,DC=org``.  RabbitMQ names the
  attributes ``CN``, ``DC``, ``O``, ``OU``, ``C``, ``L``, ``ST``, ``UID``, ``SN``,
  ``GIVENNAME``, ``EMAILADDRESS``, ... and writes others as dotted OIDs;
  :func:`subject_to_rfc4514` formats a certificate's subject the same way, so a client
  knows the user name the broker will give it.
* **DIRAC's slash form**, what the Registry holds (``Registry/Users/<name>/DN``): RDNs in
  certificate order, each prefixed by ``/``, OpenSSL's short attribute names
  (``emailAddress``, ``CN``, ...): ``/DC=org/DC=example/CN=alice``.  The pairs of a
  multi-valued RDN are joined by ``+``.  A ``/``, ``+`` or ``\\`` inside a value is
  escaped with ``\\`` so that every DN converts back exactly (``=`` and ``,`` need no
  escape there: the first ``=`` of a pair ends the attribute name).

:func:`rfc4514_to_dirac` and :func:`dirac_to_rfc4514` convert between the two;
``dirac_to_rfc4514(rfc4514_to_dirac(x)) == canonical(x)`` for every DN.
"""

from __future__ import annotations

import re

__all__ = ["DNError", "canonical_dirac", "canonical_rfc4514", "dirac_to_rfc4514",
           "parse_dirac", "parse_rfc4514", "rfc4514_to_dirac", "strip_proxy_cns",
           "subject_to_rfc4514"]

#: One RDN: its (attribute, value) pairs; a DN: its RDNs in certificate order.
RDN = tuple[tuple[str, str], ...]


class DNError(ValueError):
    """A string that is not a distinguished name in the expected form."""


# OID -> (RabbitMQ's name, OpenSSL's short name used in DIRAC's slash form).
_ATTRS: dict[str, tuple[str, str]] = {
    "2.5.4.3": ("CN", "CN"),
    "2.5.4.4": ("SN", "SN"),
    "2.5.4.5": ("SERIALNUMBER", "serialNumber"),
    "2.5.4.6": ("C", "C"),
    "2.5.4.7": ("L", "L"),
    "2.5.4.8": ("ST", "ST"),
    "2.5.4.9": ("STREET", "street"),
    "2.5.4.10": ("O", "O"),
    "2.5.4.11": ("OU", "OU"),
    "2.5.4.12": ("TITLE", "title"),
    "2.5.4.42": ("GIVENNAME", "GN"),
    "2.5.4.43": ("INITIALS", "initials"),
    "2.5.4.44": ("GENERATIONQUALIFIER", "generationQualifier"),
    "2.5.4.65": ("PSEUDONYM", "pseudonym"),
    "0.9.2342.19200300.100.1.25": ("DC", "DC"),
    "0.9.2342.19200300.100.1.1": ("UID", "UID"),
    "1.2.840.113549.1.9.1": ("EMAILADDRESS", "emailAddress"),
}
# Any spelling (case-insensitive) -> OID.
_BY_NAME: dict[str, str] = {}
for _oid, (_rabbit, _openssl) in _ATTRS.items():
    _BY_NAME[_rabbit.lower()] = _oid
    _BY_NAME[_openssl.lower()] = _oid
_BY_NAME.update({"e": "1.2.840.113549.1.9.1", "email": "1.2.840.113549.1.9.1",
                 "userid": "0.9.2342.19200300.100.1.1", "surname": "2.5.4.4",
                 "givenname": "2.5.4.42", "commonname": "2.5.4.3",
                 "domaincomponent": "0.9.2342.19200300.100.1.25"})

_OID = re.compile(r"^(?:oid\.)?([0-9]+(?:\.[0-9]+)+)$", re.IGNORECASE)


def _oid_of(name: str) -> str:
    name = name.strip()
    match = _OID.match(name)
    if match:
        return match.group(1)
    oid = _BY_NAME.get(name.lower())
    if oid is None:
        raise DNError(f"unknown attribute type {name!r}")
    return oid


def _rabbit_name(oid: str) -> str:
    return _ATTRS[oid][0] if oid in _ATTRS else oid


def _openssl_name(oid: str) -> str:
    return _ATTRS[oid][1] if oid in _ATTRS else oid


# ---------------------------------------------------------------- RFC 4514
_RFC_SPECIAL = set('"+,;<>\\')


def _escape_rfc4514(value: str) -> str:
    """Escape a value as RabbitMQ does (RFC 4514 section 2.4, control characters in hex)."""
    out = []
    for i, ch in enumerate(value):
        if ch in _RFC_SPECIAL or (i == 0 and ch in " #") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def _format_rfc4514(rdns: list[RDN]) -> str:
    return ",".join("+".join(f"{_rabbit_name(oid)}={_escape_rfc4514(value)}"
                             for oid, value in rdn) for rdn in reversed(rdns))


def _split_escaped(text: str, separators: str) -> list[tuple[str, str]]:
    """Split at unescaped ``separators``: [(piece, separator that ended it or "")]."""
    pieces: list[tuple[str, str]] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                raise DNError(f"a DN may not end with a lone backslash: {text!r}")
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch in separators:
            pieces.append(("".join(current), ch))
            current = []
        else:
            current.append(ch)
        i += 1
    pieces.append(("".join(current), ""))
    return pieces


def _unescape_rfc4514(raw: str) -> str:
    """Decode ``\\c`` and ``\\XX`` (hex pairs make UTF-8 bytes) escapes of a value."""
    if raw.startswith("#"):
        raise DNError(f"BER-encoded (#hex) attribute values are not supported: {raw!r}")
    data = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            pair = raw[i + 1:i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                data.append(int(pair, 16))
                i += 3
                continue
            if i + 1 >= len(raw):
                raise DNError(f"dangling backslash in {raw!r}")
            data.extend(raw[i + 1].encode())
            i += 2
            continue
        data.extend(ch.encode())
        i += 1
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DNError(f"escaped bytes in {raw!r} are not UTF-8") from exc


def _pair(text: str, unescape: object, whole: str) -> tuple[str, str]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise DNError(f"{text!r} in {whole!r} is not attribute=value")
    return _oid_of(name), unescape(raw)  # type: ignore[operator]


def parse_rfc4514(dn: str) -> list[RDN]:
    """The RDNs of an RFC 4514 string, in certificate order (the string's reverse)."""
    if not isinstance(dn, str) or not dn.strip():  # type: ignore[redundant-expr]  # callers pass wire values
        raise DNError(f"empty or non-string DN: {dn!r}")
    rdns: list[RDN] = []
    rdn: list[tuple[str, str]] = []
    for piece, sep in _split_escaped(dn, ",;+"):
        rdn.append(_pair(piece.lstrip(), _unescape_rfc4514, dn))
        if sep != "+":
            rdns.append(tuple(rdn))
            rdn = []
    return list(reversed(rdns))


def canonical_rfc4514(dn: str) -> str:
    """``dn`` re-spelt as RabbitMQ spells it (attribute names, escapes)."""
    return _format_rfc4514(parse_rfc4514(dn))


# ---------------------------------------------------------------- DIRAC slash form
def _escape_dirac(value: str) -> str:
    return value.replace("\\", "\\\\").replace("/", "\\/").replace("+", "\\+")


def _unescape_dirac(raw: str) -> str:
    out = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def parse_dirac(dn: str) -> list[RDN]:
    """The RDNs of a slash-form DN (``/DC=org/CN=alice``), in certificate order."""
    if not isinstance(dn, str) or not dn.startswith("/") or len(dn) < 4:  # type: ignore[redundant-expr]  # wire values
        raise DNError(f"not a DIRAC DN (it must start with '/'): {dn!r}")
    rdns: list[RDN] = []
    rdn: list[tuple[str, str]] = []
    for piece, sep in _split_escaped(dn[1:], "/+"):
        rdn.append(_pair(piece, _unescape_dirac, dn))
        if sep != "+":
            rdns.append(tuple(rdn))
            rdn = []
    return rdns


def _format_dirac(rdns: list[RDN]) -> str:
    return "".join("/" + "+".join(f"{_openssl_name(oid)}={_escape_dirac(value)}"
                                  for oid, value in rdn) for rdn in rdns)


def rfc4514_to_dirac(dn: str) -> str:
    """``CN=alice,DC=example,DC=org`` -> ``/DC=org/DC=example/CN=alice``."""
    return _format_dirac(parse_rfc4514(dn))


def dirac_to_rfc4514(dn: str) -> str:
    """``/DC=org/DC=example/CN=alice`` -> ``CN=alice,DC=example,DC=org`` (RabbitMQ's spelling)."""
    return _format_rfc4514(parse_dirac(dn))


def canonical_dirac(dn: str) -> str:
    """A slash-form DN with the attribute names spelt as OpenSSL does."""
    return _format_dirac(parse_dirac(dn))


_PROXY_CN = re.compile(r"^(?:[0-9]+|proxy|limited proxy)$")


def strip_proxy_cns(dn: str) -> str:
    """A proxy's slash-form DN without the ``/CN=<digits>``/``/CN=proxy`` RFC 3820 and
    legacy proxy components a proxy adds to its owner's DN (as DIRAC does)."""
    rdns = parse_dirac(dn)
    while len(rdns) > 1 and len(rdns[-1]) == 1 and rdns[-1][0][0] == "2.5.4.3" \
            and _PROXY_CN.match(rdns[-1][0][1]):
        rdns.pop()
    return _format_dirac(rdns)


def subject_to_rfc4514(name: object) -> str:
    """RabbitMQ's user name for a ``cryptography.x509.Name`` (a certificate's subject)."""
    rdns: list[RDN] = []
    for rdn in name.rdns:  # type: ignore[attr-defined]
        rdns.append(tuple((attr.oid.dotted_string, str(attr.value)) for attr in rdn))
    return _format_rfc4514(rdns)
