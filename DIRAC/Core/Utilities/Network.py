"""DIRAC's ``DIRAC.Core.Utilities.Network``: host names, addresses and interfaces.

``discoverInterfaces`` reads Linux's interface table with the standard library (an
``ioctl`` for the IPv4 address, ``/sys/class/net`` for the MAC address) rather than
adding a compiled dependency (DIRAC uses psutil) for one function.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
from pathlib import Path
from urllib import parse

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

__all__ = ["checkHostsMatch", "discoverInterfaces", "getFQDN", "getIPsForHostName",
           "splitURL"]

_SIOCGIFADDR = 0x8915  # Linux: get an interface's IPv4 address

# Text glibc gives for EAI_NONAME; used for names we refuse without a look-up.
_EAI_NONAME_TEXT = "Name or service not known"


def _isInvalidName(hostName: str) -> bool:
    """Tell whether ``hostName`` is under the reserved ``.invalid`` TLD (RFC 6761)."""
    name = hostName.rstrip(".").lower()
    return name == "invalid" or name.endswith(".invalid")


def getIPsForHostName(hostName: str) -> DReturnType:
    """Resolve a host name to its IP addresses, without connecting anywhere.

    Returns ``S_OK([addresses])``, unique, in ``socket.getaddrinfo`` order
    (IPv4 and IPv6 alike), or
    ``S_ERROR(f"Can't get info for host {hostName}: {e}")`` on failure.

    Choices:

    * ``""`` gives ``S_OK([""])`` without a look-up, as DIRAC's documentation
      shows; ``getaddrinfo("")`` raises on Linux, so this keeps the
      documented behaviour on every platform.
    * Names under the reserved ``.invalid`` TLD fail at once (RFC 6761 asks
      resolvers to do so) with a ``socket.gaierror``-style text
      (``[Errno -2] Name or service not known`` here), so they never wait
      on a slow or absent DNS server.
    """
    if hostName == "":
        return S_OK([""])
    try:
        if isinstance(hostName, str) and _isInvalidName(hostName):
            raise socket.gaierror(socket.EAI_NONAME, _EAI_NONAME_TEXT)
        infos = socket.getaddrinfo(hostName, None)
    except (OSError, ValueError, TypeError) as e:
        return S_ERROR(f"Can't get info for host {hostName}: {e}")
    return S_OK(list(dict.fromkeys(info[4][0] for info in infos)))


def getFQDN() -> str:
    """This host's fully qualified name (its node name when that says ``localhost``)."""
    name = socket.getfqdn()
    if "localhost" in name:
        name = os.uname()[1]
    return name


def _ipv4Of(interface: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", interface.encode()[:15])
        try:
            answer = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
        except OSError:  # no IPv4 address on this interface
            return "0.0.0.0"
    return socket.inet_ntoa(answer[20:24])


def discoverInterfaces() -> dict[str, dict[str, str]]:
    """``{interface: {"ip": IPv4 address, "mac": MAC address}}`` for this host's interfaces
    (``0.0.0.0`` / ``00:00:00:00:00:00`` where an interface has none)."""
    interfaces = {}
    for _, name in socket.if_nameindex():
        mac = "00:00:00:00:00:00"
        with contextlib.suppress(OSError):
            mac = Path(f"/sys/class/net/{name}/address").read_text().strip() or mac
        interfaces[name] = {"ip": _ipv4Of(name), "mac": mac}
    return interfaces


def splitURL(url: str) -> DReturnType:
    """``S_OK((scheme, host, port, path))`` of a URL (port 0 when absent)."""
    parts = parse.urlparse(url)
    if not parts.scheme:
        return S_ERROR(f"'{url}' URL is missing protocol")
    try:
        port = parts.port or 0
    except ValueError as exc:
        return S_ERROR(f"'{url}': {exc}")
    return S_OK((parts.scheme, parts.hostname or "", port, parts.path.lstrip("/")))


def checkHostsMatch(host1: str, host2: str) -> DReturnType:
    """``S_OK(True)`` when the two names share an IP address, ``S_OK(False)`` if not;
    the S_ERROR of the look-up that failed."""
    addresses = []
    for host in (host1, host2):
        result = getIPsForHostName(host)
        if not result["OK"]:
            return result
        addresses.append(result["Value"])
    return S_OK(any(ip in addresses[1] for ip in addresses[0]))
