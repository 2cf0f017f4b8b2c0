"""What the DataManagement tests share: a Configuration file with a Registry and storage
elements, real broker users, and a ``dirac-worker DataManagement`` on it.

Identities: the worker reads the Registry from ``DIRAC_CS_FILE``; ``alice`` and ``bob``
are real broker users (made with rabbitmqctl, deleted after) in group ``dirac_user``;
the module's own broker user (``guest`` locally) is ``admin``, in ``dirac_admin`` with
the ``FileCatalogManagement`` property.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from diracmq.broker.config import Settings
from diracmq_testing import WorkerPool, url_user, url_vhost, url_with_vhost

from .wms_conftest_helpers import broker_user, fresh_postgres_database


@dataclasses.dataclass
class DMS:
    """A running DataManagement System for tests."""

    backend: str
    workdir: Path
    settings: dict[str, Settings]   # "alice", "bob", "admin" -> their client settings
    names: dict[str, str]           # the same keys -> DIRAC user names (= broker users)
    pool: WorkerPool
    ses: dict[str, Path]            # SE name -> its BasePath
    urls: dict[str, str]            # "alice", "bob", "admin" -> their broker URLs
    env: dict[str, str]             # the environment the workers were started with

    def start_worker(self, processes: int = 1) -> Any:
        """Start one more ``dirac-worker DataManagement`` with the same environment."""
        with pytest.MonkeyPatch.context() as mp:
            for name, value in self.env.items():
                mp.setenv(name, value)
            return self.pool.start("DataManagement", processes=processes, pythonpath=[])

    def home(self, who: str) -> str:
        name = self.names[who]
        return f"/dirac/user/{name[0]}/{name}"


def write_cs(path: Path, names: dict[str, str], ses: dict[str, dict[str, Any]]) -> None:
    """A Configuration file: the Registry of ``names`` and the storage elements ``ses``."""
    lines = ['[Registry]', 'DefaultGroup = "dirac_user"', '']
    for key, name in names.items():
        group = "dirac_admin" if key == "admin" else "dirac_user"
        lines += [f'[Registry.Users."{name}"]', f'BrokerUser = "{name}"',
                  f'Groups = ["{group}"]', '']
    lines += ['[Registry.Groups.dirac_user]', 'Properties = ["NormalUser"]', 'VO = "dirac"', '',
              '[Registry.Groups.dirac_admin]',
              'Properties = ["NormalUser", "FileCatalogManagement"]', 'VO = "dirac"', '']
    for se, options in ses.items():
        lines.append(f'[Resources.StorageElements."{se}"]')
        lines += [f'{k} = {v!r}' if not isinstance(v, str) else f'{k} = "{v}"'
                  for k, v in options.items()]
        lines.append('')
    path.write_text("\n".join(lines))


@contextlib.contextmanager
def running_dms(vhost_url: str, private_vhost: bool, workdir: Path, backend: str,
                se_options: dict[str, dict[str, Any]] | None = None,
                processes: int = 1) -> Iterator[DMS]:
    """Broker users, a Configuration file and a DataManagement worker; all gone after."""
    vhost = url_vhost(vhost_url)
    with contextlib.ExitStack() as stack:
        alice, pw_a = stack.enter_context(broker_user(vhost, "alice"))
        bob, pw_b = stack.enter_context(broker_user(vhost, "bob"))
        admin = url_user(vhost_url)
        names = {"alice": alice, "bob": bob, "admin": admin}
        urls = {"admin": vhost_url}
        for key, name, password in (("alice", alice, pw_a), ("bob", bob, pw_b)):
            urls[key] = url_with_vhost(f"amqp://{quote(name)}:{password}@127.0.0.1:5672/",
                                       vhost)
        settings = {key: Settings.load(url=url, rpc_timeout=60.0, connect_timeout=5.0)
                    for key, url in urls.items()}
        ses = se_options or {"SE-A": {}, "SE-B": {"MaxStorageSize": 1}}
        ses = {name: {"BasePath": str(workdir / name), **opts} for name, opts in ses.items()}
        cs = workdir / "cs.toml"
        write_cs(cs, names, ses)
        env = {"DIRAC_CS_FILE": str(cs), "DIRAC_DATA_DIR": str(workdir / "data")}
        if backend == "postgresql":
            env["DIRAC_FILECATALOGDB_URL"] = stack.enter_context(
                fresh_postgres_database("dms"))
        else:
            env["DIRAC_FILECATALOGDB_URL"] = ""
        pool = WorkerPool(vhost_url, workdir, private_vhost)
        running = DMS(backend, workdir, settings, names, pool,
                      {name: Path(o["BasePath"]) for name, o in ses.items()}, urls, env)
        running.start_worker(processes)
        try:
            yield running
        finally:
            problems = pool.stop_all()
            assert not problems, problems


def ok(result: dict) -> Any:
    """The Value of an S_OK (failing with the message otherwise)."""
    assert isinstance(result, dict) and result.get("OK") is True, result
    return result["Value"]


def bulk_ok(result: dict, *lfns: str) -> dict:
    """``Successful`` of a bulk S_OK, checking that ``lfns`` are all in it."""
    value = ok(result)
    assert set(value) == {"Successful", "Failed"}, value
    missing = [lfn for lfn in lfns if lfn not in value["Successful"]]
    assert not missing, value
    return value["Successful"]


def bulk_failed(result: dict, *lfns: str) -> dict:
    """``Failed`` of a bulk S_OK, checking that ``lfns`` are all in it."""
    value = ok(result)
    missing = [lfn for lfn in lfns if lfn not in value["Failed"]]
    assert not missing, value
    return value["Failed"]
