"""DIRAC's security properties: the names a group's ``Properties`` and ``auth_`` rules use.

``auth_killJob = [JOB_ADMINISTRATOR, "group:dirac_admin"]`` reads as DIRAC does; any
other string is a property too (a site may invent its own).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ALARMS_MANAGEMENT", "CS_ADMINISTRATOR", "FULL_DELEGATION", "GENERIC_PILOT",
    "JOB_ADMINISTRATOR", "JOB_MONITOR", "JOB_SHARING", "LIMITED_DELEGATION",
    "NORMAL_USER", "OPERATOR", "PILOT", "PRIVATE_LIMITED_DELEGATION", "PRODUCTION_MANAGEMENT",
    "SERVICE_ADMINISTRATOR", "SITE_MANAGER", "SecurityProperty", "TRUSTED_HOST",
]


class SecurityProperty(StrEnum):
    """The properties DIRAC itself defines (a ``str``: compare with plain strings)."""

    NORMAL_USER = "NormalUser"
    JOB_ADMINISTRATOR = "JobAdministrator"
    JOB_MONITOR = "JobMonitor"
    JOB_SHARING = "JobSharing"
    CS_ADMINISTRATOR = "CSAdministrator"
    SERVICE_ADMINISTRATOR = "ServiceAdministrator"
    TRUSTED_HOST = "TrustedHost"
    PRODUCTION_MANAGEMENT = "ProductionManagement"
    OPERATOR = "Operator"
    SITE_MANAGER = "SiteManager"
    ALARMS_MANAGEMENT = "AlarmsManagement"
    GENERIC_PILOT = "GenericPilot"
    PILOT = "Pilot"
    FULL_DELEGATION = "FullDelegation"
    LIMITED_DELEGATION = "LimitedDelegation"
    PRIVATE_LIMITED_DELEGATION = "PrivateLimitedDelegation"


NORMAL_USER = SecurityProperty.NORMAL_USER
JOB_ADMINISTRATOR = SecurityProperty.JOB_ADMINISTRATOR
JOB_MONITOR = SecurityProperty.JOB_MONITOR
JOB_SHARING = SecurityProperty.JOB_SHARING
CS_ADMINISTRATOR = SecurityProperty.CS_ADMINISTRATOR
SERVICE_ADMINISTRATOR = SecurityProperty.SERVICE_ADMINISTRATOR
TRUSTED_HOST = SecurityProperty.TRUSTED_HOST
PRODUCTION_MANAGEMENT = SecurityProperty.PRODUCTION_MANAGEMENT
OPERATOR = SecurityProperty.OPERATOR
SITE_MANAGER = SecurityProperty.SITE_MANAGER
ALARMS_MANAGEMENT = SecurityProperty.ALARMS_MANAGEMENT
GENERIC_PILOT = SecurityProperty.GENERIC_PILOT
PILOT = SecurityProperty.PILOT
FULL_DELEGATION = SecurityProperty.FULL_DELEGATION
LIMITED_DELEGATION = SecurityProperty.LIMITED_DELEGATION
PRIVATE_LIMITED_DELEGATION = SecurityProperty.PRIVATE_LIMITED_DELEGATION
