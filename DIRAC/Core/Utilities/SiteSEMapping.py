"""Which sites a storage element serves, from the Configuration (DIRAC's SiteSEMapping).

As in DIRAC, a site names its storage elements in ``Resources/Sites/<grid>/<site>/SE``
(a list, or a comma-separated text)::

    [Resources.Sites.LCG."LCG.CERN.cern"]
    SE = ["CERN-DISK", "CERN-USER"]

An SE may serve several sites (each lists it).  An SE no site lists is at no site:
the InputData optimizer then does not restrict where the job runs for it
(Executor/InputData.py).  Every function takes an optional ``tree`` (the
configuration as a dict) so the logic is testable without a configuration; without
it, ``gConfig``'s current tree is read (a missing or broken configuration: no sites).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from diracmq.broker.returnvalues import S_OK, DReturnType

__all__ = ["getSEsForSite", "getSiteSEMapping", "getSitesForSE", "sitesHoldingAll"]


def _sitesSection(tree: dict[str, Any] | None) -> dict[str, Any]:
    if tree is None:
        try:
            from DIRAC import gConfig

            result = gConfig.getOptionsDictRecursively("/Resources/Sites")
        except Exception:  # no configuration at all: no sites
            return {}
        return result["Value"] if result["OK"] and isinstance(result["Value"], dict) else {}
    section = tree.get("Resources", {})
    section = section.get("Sites", {}) if isinstance(section, dict) else {}
    return section if isinstance(section, dict) else {}


def _names(value: Any) -> list[str]:
    """A list option as DIRAC accepts it: a list, or a comma-separated text."""
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return []
    return [str(v).strip() for v in items if str(v).strip()]


def getSiteSEMapping(tree: dict[str, Any] | None = None) -> DReturnType:
    """``S_OK({site: [SE, ...]})`` of every site of every grid that lists SEs."""
    mapping: dict[str, list[str]] = {}
    for grid in _sitesSection(tree).values():
        if not isinstance(grid, dict):
            continue
        for site, options in grid.items():
            if isinstance(options, dict):
                ses = _names(options.get("SE"))
                if ses:
                    mapping.setdefault(site, [])
                    mapping[site] += [se for se in ses if se not in mapping[site]]
    return S_OK(mapping)


def getSitesForSE(storageElement: str, tree: dict[str, Any] | None = None) -> DReturnType:
    """``S_OK([site, ...])``: the sites whose ``SE`` option lists ``storageElement``
    (sorted; empty when none does)."""
    mapping = getSiteSEMapping(tree)["Value"]
    return S_OK(sorted(site for site, ses in mapping.items() if storageElement in ses))


def getSEsForSite(site: str, tree: dict[str, Any] | None = None) -> DReturnType:
    """``S_OK([SE, ...])`` that ``site`` lists (empty for an unknown site)."""
    return S_OK(list(getSiteSEMapping(tree)["Value"].get(site, [])))


def sitesHoldingAll(replicas: Mapping[str, Iterable[str]], tree: dict[str, Any] | None = None
                    ) -> list[str] | None:
    """The sites at which every file of ``replicas`` (``{lfn: [SE, ...]}``) has a replica.

    None when no SE holding any of the files is at a configured site (nothing to
    restrict: e.g. a single-host set-up with only ``SE-USER``).  A file whose SEs are
    at no site cannot be read locally anywhere, so it empties the answer once some
    other file does restrict the sites; an empty list means no site holds them all.
    """
    mapping = getSiteSEMapping(tree)["Value"]
    seSites: dict[str, set[str]] = {}
    for site, ses in mapping.items():
        for se in ses:
            seSites.setdefault(se, set()).add(site)
    perFile = [set().union(*(seSites.get(se, set()) for se in ses)) if ses else set()
               for ses in (list(s) for s in replicas.values())]
    if not any(perFile):
        return None
    common = set.intersection(*perFile) if perFile else set()
    return sorted(common)
