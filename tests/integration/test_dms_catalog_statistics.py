"""PostgreSQL's planner statistics of the catalogue after bulk registrations.

Without them the planner takes a table it never analysed for a small one and runs a
bulk ``addFile``'s lookups as sequential scans, each slower as the table grows
(FileCatalogDB._refreshStatistics).  The load itself is measured in bench/dms_bench.py.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from DIRAC.DataManagementSystem.DB import FileCatalogDB as fcmodule
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

from .wms_conftest_helpers import fresh_postgres_database, ok

pytestmark = pytest.mark.timeout(120)

ADMIN = {"username": "admin", "group": "admins", "properties": ["FileCatalogManagement"]}


def files(first: int, count: int) -> dict:
    return {f"/dirac/stats/d{i % 7}/f{i}": {"Size": i, "SE": "SE-A"}
            for i in range(first, first + count)}


def test_bulk_registrations_refresh_the_planner_statistics(monkeypatch):
    monkeypatch.setattr(fcmodule, "ANALYZE_MIN_ROWS", 100)
    with fresh_postgres_database("fcstats") as url:
        db = FileCatalogDB(url)
        ok(db.initialize())

        def believed(table: str = "FC_Files") -> float:
            return float(db._run(lambda conn: conn.execute(sa.text(
                "SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                {"t": f'"{table}"'}).scalar(), write=False))

        assert believed() < 1  # never analysed: -1 (0 before PostgreSQL 14)
        assert len(ok(db.addFile(files(0, 60), ADMIN))["Successful"]) == 60
        assert believed() < 1  # fewer files than ANALYZE_MIN_ROWS: not yet
        assert len(ok(db.addFile(files(60, 190), ADMIN))["Successful"]) == 190
        assert believed() == 250 and believed("FC_Replicas") == 250
        ok(db.addFile(files(250, 100), ADMIN))
        assert believed() == 250  # 100 more, under half of 250: not again
        ok(db.addFile(files(350, 40), ADMIN))
        assert believed() == 390  # 140 since the last analysis: more than half
        # a registration already made counts for nothing
        ok(db.addFile(files(0, 390), ADMIN))
        assert db._unanalyzed == 0
        db.engine.dispose()


def test_a_failed_analysis_costs_nothing_but_speed(monkeypatch, caplog):
    monkeypatch.setattr(fcmodule, "ANALYZE_MIN_ROWS", 10)
    with fresh_postgres_database("fcstats") as url:
        db = FileCatalogDB(url)
        ok(db.initialize())
        monkeypatch.setattr(fcmodule, "_RELTUPLES", sa.text("SELECT no_such_column"))
        result = ok(db.addFile(files(0, 20), ADMIN))
        assert len(result["Successful"]) == 20 and not result["Failed"]
        assert "ANALYZE failed" in caplog.text
        db.engine.dispose()
