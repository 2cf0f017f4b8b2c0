"""DIRAC's Configuration System: the operator's TOML file, served by ``Configuration/Server``.

``from DIRAC import gConfig`` (or ``DIRAC.ConfigurationSystem.Client.Config``) reads it
with DIRAC's slash paths; docs/configuration-service.md describes the file.
"""
