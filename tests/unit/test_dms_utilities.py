"""The DataManagement System's argument rules (no broker, no database)."""

from __future__ import annotations

import datetime as dt
import errno

import pytest

from DIRAC.DataManagementSystem.DB.FileCatalogDB import coerceMeta, metaKind
from DIRAC.DataManagementSystem.Utilities.DMSUtilities import (
    checkArgumentFormat,
    normalizeLFN,
    parseMetaConditions,
    sameChecksum,
    seServiceName,
    splitLFNs,
)


@pytest.mark.parametrize(("given", "expected"), [
    ("/vo/user/a/alice/f", "/vo/user/a/alice/f"),
    ("LFN:/vo//user/./a/alice/f/", "/vo/user/a/alice/f"),
    ("  /x  ", "/x"),
    ("//x", "/x"),
])
def test_normalize(given, expected):
    assert normalizeLFN(given) == expected


@pytest.mark.parametrize("bad", ["relative", "", "/a/../b", "/a\nb", "/a\x00b", 3, None,
                                 "/" + "x" * 1100])
def test_not_an_lfn(bad):
    with pytest.raises(ValueError):
        normalizeLFN(bad)


def test_bulk_arguments():
    assert checkArgumentFormat("LFN:/a")["Value"] == {"/a": None}
    assert checkArgumentFormat(["/a", "/b/"])["Value"] == {"/a": None, "/b": None}
    assert checkArgumentFormat({"/a": {"SE": "X"}})["Value"] == {"/a": {"SE": "X"}}
    for bad in ("", [], {}, 5, None):
        assert checkArgumentFormat(bad)["Errno"] == errno.EINVAL
    good, failed = splitLFNs(["/a", "b", "/c/../d"])["Value"]
    assert good == {"/a": None} and set(failed) == {"b", "/c/../d"}


def test_conditions():
    assert parseMetaConditions(["Energy>100", "Energy<=300", "Particle=muon,electron",
                                "Kind!=raw", "Quality>=0.5"]) == {
        "Energy": {">": 100, "<=": 300}, "Particle": {"in": ["muon", "electron"]},
        "Kind": {"!=": "raw"}, "Quality": {">=": 0.5}}
    assert parseMetaConditions(["Run!=1,2"]) == {"Run": {"nin": [1, 2]}}
    for bad in (["Energy"], ["=3"], ["Energy>"], ["Energy>1", "Energy>2"]):
        with pytest.raises(ValueError):
            parseMetaConditions(bad)


def test_metadata_types():
    assert [metaKind(t) for t in ("INT", "int", "FLOAT", "VARCHAR(128)", "DATE", "DATETIME")] \
        == ["int", "int", "float", "str", "date", "date"]
    with pytest.raises(ValueError):
        metaKind("BLOB")
    assert coerceMeta("int", "12", "x") == 12
    assert coerceMeta("date", "2024-05-01", "x") == dt.datetime(2024, 5, 1)
    for kind, value in (("int", 1.5), ("int", True), ("float", "nan"), ("str", "x" * 300),
                        ("date", "yesterday"), ("str", None)):
        with pytest.raises(ValueError):
            coerceMeta(kind, value, "x")


def test_names_and_checksums():
    assert seServiceName("SE-USER") == "DataManagement/StorageElement_SE_USER"
    with pytest.raises(ValueError):
        seServiceName("bad name")
    assert sameChecksum("0000ABCD", "abcd") and not sameChecksum("1", "2")
    assert not sameChecksum("xyz", "xyz")
