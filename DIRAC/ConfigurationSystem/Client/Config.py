"""``gConfig``: the process's configuration reader (also ``from DIRAC import gConfig``)."""

from DIRAC.ConfigurationSystem.Client.ConfigurationClient import ConfigurationClient
from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

__all__ = ["gConfig"]

#: Reads ``gConfigurationData``: loaded on first use, kept current by its refresher.
gConfig = ConfigurationClient(gConfigurationData)
