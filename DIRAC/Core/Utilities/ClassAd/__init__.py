"""DIRAC's ``DIRAC.Core.Utilities.ClassAd`` package (``ClassAdLight.ClassAd``)."""
