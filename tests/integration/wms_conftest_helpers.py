"""Helpers and fixtures of the WorkloadManagement tests: real SQLite and PostgreSQL JobDBs,
real broker users.

PostgreSQL: ``DIRACMQ_TEST_POSTGRES_URL`` (default the local server,
``postgresql+psycopg://postgres@127.0.0.1:5432/test``) is used to create one
database per test session, ``diracmq_wms_<random>``, dropped at the end.  When that
server cannot be reached the PostgreSQL variants are skipped, saying why.

Use the fixtures in a test module by binding them there:
``jobdb_url = helpers.jobdb_url`` and ``postgres_url = helpers.postgres_url``
(after ``from . import wms_conftest_helpers as helpers``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB

POSTGRES_URL = os.environ.get("DIRACMQ_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT",
                            connect_args={"connect_timeout": 3})


@contextlib.contextmanager
def fresh_postgres_database(label: str = "wms") -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards; skips if no server."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'diracmq[postgres]')")
    name = f"diracmq_{label}_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL} "
                    f"(set DIRACMQ_TEST_POSTGRES_URL): {exc.orig}")
    url = sa.engine.make_url(POSTGRES_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        from DIRAC.WorkloadManagementSystem.DB import JobDB as jobdb_module

        for key, engine in list(jobdb_module._engines.items()):
            if name in key:
                engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this session (skips if no server)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def jobdb_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty JobDB (schema created) on SQLite (a temporary file) or PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'JobDB.sqlite'}"
        db = JobDB(url)
        assert db.initialize()["OK"]
        yield url
        return
    url = request.getfixturevalue("postgres_url")
    db = JobDB(url)
    db.dropTables()
    assert db.initialize()["OK"]
    yield url
    db.dropTables()


def ok(result: dict) -> Any:
    """The Value of an S_OK, else fail with the message."""
    assert isinstance(result, dict) and result.get("OK") is True, result
    return result["Value"]


def error(result: dict) -> dict:
    """The S_ERROR itself (failing if it is an S_OK)."""
    assert isinstance(result, dict) and result.get("OK") is False, result
    return result


# ------------------------------------------------------------ processes
def submit_and_update(url: str, owner: str, count: int) -> list[int]:
    """Run in another process: submit ``count`` jobs and walk each to Running."""
    db = JobDB(url)
    ids = []
    for n in range(count):
        job_id = ok(db.submitJob(f'[Executable = "x"; JobName = "{owner}-{n}"]', owner))
        for status in ("Checking", "Waiting", "Matched", "Running"):
            ok(db.setJobStatus(job_id, status, f"{status} by {owner}", source=owner))
        ids.append(job_id)
    return ids


# ------------------------------------------------------------- broker users
def rabbitmqctl(*args: str) -> tuple[int, str]:
    try:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, repr(exc)
    return done.returncode, done.stdout + done.stderr


@contextlib.contextmanager
def broker_user(vhost: str, prefix: str = "wms") -> Iterator[tuple[str, str]]:
    """A real RabbitMQ user with full rights on ``vhost``: ``(name, password)``; deleted after."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    password = secrets.token_hex(12)
    code, out = rabbitmqctl("add_user", name, password)
    if code != 0:
        pytest.skip(f"cannot create a broker user with rabbitmqctl: {out.strip()}")
    try:
        code, out = rabbitmqctl("set_permissions", "-p", vhost, name, ".*", ".*", ".*")
        assert code == 0, out
        yield name, password
    finally:
        rabbitmqctl("delete_user", name)
