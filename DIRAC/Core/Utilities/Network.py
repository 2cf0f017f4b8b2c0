"""DIRAC's ``DIRAC.Core.Utilities.Network``: host name helpers (look-ups only)."""

from __future__ import annotations

import socket

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

__all__ = ["getIPsForHostName"]

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
