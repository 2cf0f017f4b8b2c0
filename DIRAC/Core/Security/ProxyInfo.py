"""DIRAC's ``getProxyInfo``: who the services take the caller for.

There are no proxies here: the caller is its broker user, mapped to a DIRAC user, group
and properties by the Registry of the configuration.  What counts is what a *service*
makes of it, so :func:`getProxyInfo` asks one with the built-in ``whoami``:
``Configuration/Server`` when a Configuration worker runs (it owns the Registry), else
``WorkloadManagement/JobMonitoring`` (a broker without a Configuration service: the
username is the broker user).

The answer has DIRAC's keys.  ``chain`` is None and ``isProxy``/``isLimitedProxy`` are
False (no proxy); ``subject``/``identity``/``DN`` are the Registry's DN, or
``/CN=<broker user>`` when it has none; ``secondsLeft`` is the remaining validity of
the certificate named by ``X509_USER_PROXY`` or ``X509_USER_CERT`` when one is set (a
PEM file), else :data:`NO_EXPIRY` (a broker login does not expire).
"""

from __future__ import annotations

import errno
import logging
import os
import ssl
import time
from typing import Any

from diracmq.broker.derrno import EMQNOQUEUE, EMQNOWORKER
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

__all__ = ["CONFIGURATION", "FALLBACK", "NO_EXPIRY", "getProxyInfo", "getVOfromProxyGroup",
           "whoami"]

log = logging.getLogger(__name__)

CONFIGURATION = "Configuration/Server"
FALLBACK = "WorkloadManagement/JobMonitoring"
#: Seconds to wait for the Configuration service before asking the fallback instead.
PROBE_TIMEOUT = 10.0
#: ``secondsLeft`` of an identity without a certificate: one year.
NO_EXPIRY = 365 * 24 * 3600


def whoami(service: str | None = None, timeout: float | None = None
           ) -> tuple[str | None, DReturnType]:
    """``(service that answered, S_OK(credentials) or the last S_ERROR)``.

    ``service`` asks that one only; otherwise the Configuration service, then the
    fallback when the former is absent or silent.
    """
    from diracmq.client.base import Client

    def ask(name: str, limit: float | None) -> DReturnType:
        return Client(url=name, timeout=limit).whoami()

    if service:
        return service, ask(service, timeout)
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

    tried = []
    # No CS queue on this broker, or no Configuration worker on it: do not wait for it.
    if not gConfigurationData.serviceKnownDown():
        probe = PROBE_TIMEOUT if timeout is None else min(timeout, PROBE_TIMEOUT)
        result = ask(CONFIGURATION, probe)
        if result["OK"]:
            return CONFIGURATION, result
        if result.get("Errno") not in (EMQNOQUEUE, EMQNOWORKER, errno.ETIMEDOUT):
            return CONFIGURATION, result
        log.info("%s did not answer (%s); asking %s", CONFIGURATION, result["Message"],
                 FALLBACK)
        tried.append(f"{CONFIGURATION}: {result['Message']}")
    result = ask(FALLBACK, timeout)
    if result["OK"]:
        return FALLBACK, result
    tried.append(f"{FALLBACK}: {result['Message']}")
    # the last S_ERROR (its Errno) with every service's answer in the message
    return None, {**result, "Message": "no service could say who you are: " + "; ".join(tried)}


def _certificateSecondsLeft() -> tuple[str | None, int | None]:
    """``(path, seconds left)`` of the certificate named in the environment, if any."""
    for variable in ("X509_USER_PROXY", "X509_USER_CERT"):
        path = os.environ.get(variable)
        if not path or not os.path.isfile(path):
            continue
        try:
            # CPython's own PEM decoder (what ssl uses for getpeercert): no extra package
            # for one date; a Python without it treats the certificate as unreadable
            decoded = ssl._ssl._test_decode_cert(path)  # type: ignore[attr-defined]
            not_after = ssl.cert_time_to_seconds(decoded["notAfter"])
        except (ssl.SSLError, OSError, KeyError, ValueError, AttributeError):
            return path, 0  # unreadable: treated as expired, as DIRAC does
        return path, max(int(not_after - time.time()), 0)
    return None, None


def _vo(group: str) -> str:
    from DIRAC import gConfig

    vo = gConfig.getValue(f"/Registry/Groups/{group}/VO", "") if group else ""
    return str(vo or gConfig.getValue("/Registry/DefaultVO", "") or "")


def getProxyInfo(proxy: Any = False, disableVOMS: bool = False) -> DReturnType:
    """``S_OK({...})`` describing the caller as the services see it (DIRAC's keys).

    ``proxy`` (a proxy file or chain) cannot apply and is refused unless False/None;
    ``disableVOMS`` changes nothing (there are no VOMS attributes).
    """
    del disableVOMS
    if proxy:
        return S_ERROR(errno.EINVAL, "getProxyInfo: proxies are not used here: the identity "
                                     "is the broker login (docs/compatibility.md)")
    service, result = whoami()
    if not result["OK"]:
        return result
    credentials = result["Value"] or {}
    username = credentials.get("username") or "anonymous"
    broker_user = credentials.get("brokerUser") or username
    group = credentials.get("group") or ""
    dn = credentials.get("DN") or f"/CN={broker_user}"
    path, seconds = _certificateSecondsLeft()
    info: dict[str, Any] = {
        "chain": None,
        "subject": dn,
        "issuer": dn,
        "identity": dn,
        "DN": dn,
        "isProxy": False,
        "isLimitedProxy": False,
        "validDN": username != "anonymous",
        "validGroup": bool(group) and credentials.get("validGroup", True) is not False,
        "secondsLeft": NO_EXPIRY if seconds is None else seconds,
        "username": username,
        "group": group,
        "groupProperties": list(credentials.get("properties") or []),
        "brokerUser": broker_user,
        "service": service,
    }
    if path:
        info["path"] = path
    vo = _vo(group)
    if vo:
        info["VO"] = vo
    return S_OK(info)


def getVOfromProxyGroup() -> DReturnType:
    """``S_OK(VO)`` of the caller's group (``Registry/Groups/<group>/VO``, else
    ``Registry/DefaultVO``; "" when neither is set)."""
    result = getProxyInfo()
    if not result["OK"]:
        return result
    return S_OK(result["Value"].get("VO", ""))
