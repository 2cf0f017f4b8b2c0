"""Private RabbitMQ nodes and clusters on this machine, without Docker.

``dirac-rabbitmq-cluster start --nodes 3 --dir DIR`` starts three nodes of one cluster
and prints their URL list (for ``DIRAC_BROKER_URL``); ``dirac-rabbitmq-cluster stop
--dir DIR`` stops them by the PIDs it recorded.  The tests use the same classes.

Each node gets its own node name (``diracmq-<label>-<i>@localhost``), AMQP port, Erlang
distribution port, data and log directories under DIR; the nodes of a cluster share one
Erlang cookie (``DIR/home/.erlang.cookie``, ``HOME`` points there for the nodes and for
our ``rabbitmqctl``).  They run the Debian package's real start scripts
(``/usr/lib/rabbitmq/bin``, or ``DIRACMQ_RABBITMQ_SBIN``), not the ``/usr/sbin``
wrappers, which switch to the ``rabbitmq`` user and would write the system node's
logs; an empty ``rabbitmq-env.conf`` keeps ``/etc/rabbitmq`` out.  Only loopback is
used (epmd too).  A node started with TLS also listens for ``amqps://`` with
``verify_peer``, ``fail_if_no_peer_cert`` and the EXTERNAL mechanism
(``rabbitmq_auth_mechanism_ssl``), as docs/security.md describes for production.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["WAL_SYNC_METHODS", "WAL_WRITE_STRATEGIES", "LocalCluster", "LocalNode",
           "NodeUnavailable", "main"]

_SCRIPT_DIRS = ("/usr/lib/rabbitmq/bin",)


class NodeUnavailable(RuntimeError):
    """RabbitMQ is not installed here, or a node would not start."""


#: Ra's ``wal_sync_method`` values (RabbitMQ 3.10 ships Ra 2.2): ``datasync`` (the
#: default: fdatasync of the write-ahead log before an enqueue is confirmed), ``sync``
#: (fsync), ``none`` (no sync: written to the OS page cache only).
WAL_SYNC_METHODS = ("datasync", "sync", "none")

#: Ra's ``wal_write_strategy`` values (Ra 2.2): ``default`` (write the batch, sync it,
#: then tell the Raft servers it is written), ``o_sync`` (the WAL file opened with
#: O_SYNC: each write is synced, no separate sync call), ``sync_after_notify`` (tell the
#: servers first, then sync: an entry can count towards the quorum, and be confirmed,
#: before it is on disk; the window is one sync long).
WAL_WRITE_STRATEGIES = ("default", "o_sync", "sync_after_notify")


def _scripts() -> tuple[str, str]:
    dirs = [os.environ["DIRACMQ_RABBITMQ_SBIN"]] if os.environ.get("DIRACMQ_RABBITMQ_SBIN") \
        else list(_SCRIPT_DIRS)
    for folder in dirs:
        server, ctl = Path(folder, "rabbitmq-server"), Path(folder, "rabbitmqctl")
        if server.exists() and ctl.exists():
            return str(server), str(ctl)
    raise NodeUnavailable(f"no rabbitmq-server/rabbitmqctl in {', '.join(dirs)} (install "
                          f"rabbitmq-server or set DIRACMQ_RABBITMQ_SBIN)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class LocalNode:
    """One RabbitMQ node living in ``folder`` (created), sharing ``home``'s cookie."""

    def __init__(self, folder: Path, home: Path, name: str,
                 tls: dict[str, str] | None = None, net_ticktime: int = 0,
                 ports: dict[str, int] | None = None,
                 wal_sync_method: str | None = None,
                 erl_args: Sequence[str] = (),
                 wal_write_strategy: str | None = None) -> None:
        if wal_sync_method not in (None, *WAL_SYNC_METHODS):
            raise ValueError(f"wal_sync_method must be one of {', '.join(WAL_SYNC_METHODS)}")
        if wal_write_strategy not in (None, *WAL_WRITE_STRATEGIES):
            raise ValueError("wal_write_strategy must be one of "
                             f"{', '.join(WAL_WRITE_STRATEGIES)}")
        self.server_script, self.ctl_script = _scripts()
        self.dir, self.home, self.name = folder, home, name
        ports = ports or {}
        self.port = ports.get("amqp") or _free_port()
        self.dist_port = ports.get("dist") or _free_port()
        self.tls_port = (ports.get("amqps") or _free_port()) if tls else 0
        self.tls = tls
        self.log_dir = folder / "log"
        for sub in (folder, self.log_dir, folder / "mnesia"):
            sub.mkdir(parents=True, exist_ok=True)
        (folder / "env.conf").write_text("# private node: nothing from /etc/rabbitmq\n")
        self.net_ticktime = net_ticktime
        #: Ra's ``wal_sync_method`` (docs/configuration.md, "Quorum queues and the
        #: disk"); None: RabbitMQ's default (``datasync``).
        self.wal_sync_method = wal_sync_method
        #: Ra's ``wal_write_strategy`` (the same section); None: Ra's ``default``.
        self.wal_write_strategy = wal_write_strategy
        #: Extra Erlang VM flags (after the start scripts' own, so they win).
        self.erl_args = tuple(erl_args)
        self._configure()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def _configure(self) -> None:
        """Write the node's files and environment for its current ports."""
        folder, home, name, tls, net_ticktime = (self.dir, self.home, self.name, self.tls,
                                                 self.net_ticktime)
        plugins = "rabbitmq_auth_mechanism_ssl" if tls else ""
        (folder / "enabled_plugins").write_text(f"[{plugins}].\n")
        conf = [f"listeners.tcp.1 = 127.0.0.1:{self.port}",
                "loopback_users.guest = false",
                "disk_free_limit.absolute = 50MB",
                "log.console = false",
                "log.file.level = info",
                "cluster_partition_handling = pause_minority"]
        if tls:
            conf += [f"listeners.ssl.1 = 127.0.0.1:{self.tls_port}",
                     f"ssl_options.cacertfile = {tls['ca']}",
                     f"ssl_options.certfile = {tls['cert']}",
                     f"ssl_options.keyfile = {tls['key']}",
                     "ssl_options.verify = verify_peer",
                     "ssl_options.fail_if_no_peer_cert = true",
                     "auth_mechanisms.1 = PLAIN",
                     "auth_mechanisms.2 = AMQPLAIN",
                     "auth_mechanisms.3 = EXTERNAL",
                     "ssl_cert_login_from = distinguished_name"]
        (folder / "rabbitmq.conf").write_text("\n".join(conf) + "\n")
        # advanced.config: Erlang terms for what rabbitmq.conf cannot say in 3.10
        # (Ra's WAL sync method has no rabbitmq.conf key before 3.11/3.12)
        sections = []
        if net_ticktime:
            sections.append(f"{{kernel, [{{net_ticktime, {net_ticktime}}}]}}")
        ra = [f"{{{key}, {value}}}" for key, value in (
            ("wal_sync_method", self.wal_sync_method),
            ("wal_write_strategy", self.wal_write_strategy)) if value]
        if ra:
            sections.append(f"{{ra, [{', '.join(ra)}]}}")
        (folder / "advanced.config").write_text(f"[{', '.join(sections)}].\n")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("RABBITMQ_", "ERL_"))}
        self.env.update({
            "HOME": str(home),
            "RABBITMQ_CONF_ENV_FILE": str(folder / "env.conf"),
            "RABBITMQ_NODENAME": name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(folder / "node.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": " ".join(
                ("-kernel inet_dist_use_interface {127,0,0,1}", *self.erl_args)),
        })

    # ------------------------------------------------------------------ URLs
    def url(self, vhost: str = "/", user: str = "guest", password: str = "guest") -> str:
        """Password login on the plain port."""
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    def tls_url(self, vhost: str = "/", host: str = "localhost") -> str:
        """Certificate (EXTERNAL) login on the TLS port."""
        return f"amqps://{host}:{self.tls_port}/{quote(vhost, safe='')}"

    # --------------------------------------------------------------- control
    def ctl(self, *args: str, timeout: float = 30.0, check: bool = True) -> str:
        """``rabbitmqctl -n <node> args``: its output; raise NodeUnavailable on failure."""
        try:
            done = subprocess.run([self.ctl_script, "-n", self.name, *args], env=self.env,
                                  capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise NodeUnavailable(f"rabbitmqctl {' '.join(args)} on {self.name}: no answer "
                                  f"in {timeout:g}s") from exc
        if check and done.returncode != 0:
            raise NodeUnavailable(f"rabbitmqctl {' '.join(args)} on {self.name} failed: "
                                  f"{(done.stdout + done.stderr).strip()[-2000:]}")
        return done.stdout

    def queues_tool(self, *args: str, timeout: float = 30.0) -> str:
        """``rabbitmq-queues -n <node> args`` (quorum queue status); its output."""
        tool = str(Path(self.ctl_script).with_name("rabbitmq-queues"))
        done = subprocess.run([tool, "-n", self.name, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise NodeUnavailable(f"rabbitmq-queues {' '.join(args)} on {self.name} failed: "
                                  f"{(done.stdout + done.stderr).strip()[-2000:]}")
        return done.stdout

    def start(self, timeout: float = 90.0, wait: bool = True) -> None:
        """Start the node (in its own process group); ``wait``: until it serves AMQP.

        A port picked free may be taken by someone else before the node binds it: the
        node then exits at once, and is started again on new ports (twice at most).
        """
        self._spawn()
        if wait:
            self.wait_started(timeout)

    def wait_started(self, timeout: float = 90.0) -> None:
        """:meth:`wait_ready`, starting again on new ports after a port clash."""
        for attempt in range(3):
            try:
                self.wait_ready(timeout)
                return
            except NodeUnavailable:
                if attempt == 2 or not self._port_clash():
                    raise
            self.port, self.dist_port = _free_port(), _free_port()
            self.tls_port = _free_port() if self.tls else 0
            self._configure()
            self._spawn()

    def _port_clash(self) -> bool:
        text = self.log_tail(200)
        return self.proc is not None and self.proc.poll() is not None and (
            "already_used" in text or "eaddrinuse" in text)

    def _spawn(self) -> None:
        console = (self.log_dir / "console.out").open("a")
        self.proc = subprocess.Popen([self.server_script], env=self.env, cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=console,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        console.close()
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until the node listens and has finished booting."""
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc is not None and self.proc.poll() is not None:
                raise NodeUnavailable(f"{self.name} exited with {self.proc.returncode}:\n"
                                      f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise NodeUnavailable(f"{self.name} not listening after {timeout:g}s:\n"
                                      f"{self.log_tail()}")
            time.sleep(0.1)
        left = max(5.0, deadline - time.monotonic())
        self.ctl("await_startup", "--timeout", str(int(left)), timeout=left + 10)

    def running(self) -> bool:
        """True while the node's process group exists."""
        if not self.pid:
            return False
        if self.proc is not None:
            return self.proc.poll() is None
        try:
            os.killpg(self.pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def kill(self) -> None:
        """Crash the node: SIGKILL its whole process group."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        self._wait_gone(10)

    def freeze(self) -> None:
        """SIGSTOP the node: its peers and clients see it go silent (a partition)."""
        self._signal_group(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen node."""
        self._signal_group(signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully (SIGTERM: the start script shuts the VM down), else kill."""
        if not self.running():
            return
        self._signal_group(signal.SIGCONT)
        self._signal_group(signal.SIGTERM)
        if not self._wait_gone(timeout):
            self.kill()

    def _signal_group(self, signum: int) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                self.proc.poll()
            try:
                os.killpg(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                if not port_open(self.port):
                    return True
            time.sleep(0.1)
        return False

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of each of the node's log files."""
        out = []
        for path in sorted(self.log_dir.glob("*")):
            if path.is_file():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def describe(self) -> dict[str, Any]:
        """What ``stop`` needs to find this node again."""
        return {"name": self.name, "pid": self.pid, "amqp": self.port, "dist": self.dist_port,
                "amqps": self.tls_port}


class LocalCluster:
    """N nodes of one cluster under ``folder`` (a temporary directory when None)."""

    def __init__(self, nodes: int = 3, folder: Path | None = None, label: str = "cluster",
                 tls: dict[str, str] | None = None, net_ticktime: int = 0,
                 wal_sync_method: str | None = None,
                 erl_args: Sequence[str] | None = None,
                 wal_write_strategy: str | None = None) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.own_dir = folder is None
        self.dir = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="diracmq-rabbit-"))
        self.home = self.dir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20).upper())
            cookie.chmod(0o400)
        tag = f"{label}-{os.getpid()}"
        self.nodes = [LocalNode(self.dir / f"node{i + 1}", self.home,
                                f"diracmq-{tag}-{i + 1}@localhost", tls, net_ticktime,
                                wal_sync_method=wal_sync_method, erl_args=erl_args or (),
                                wal_write_strategy=wal_write_strategy)
                      for i in range(nodes)]

    def start(self, timeout: float = 120.0) -> None:
        """Start every node and join them into one cluster (the first one's)."""
        first = self.nodes[0]
        try:
            for node in self.nodes:
                node.start(wait=False)
            for node in self.nodes:
                node.wait_started(timeout)
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.name, timeout=60)
                node.ctl("start_app", timeout=60)
                node.ctl("await_startup", "--timeout", "60", timeout=70)
        except Exception:
            self.stop()
            raise
        self.save()

    def urls(self, vhost: str = "/", tls: bool = False) -> list[str]:
        """One URL per node (password login as guest, or certificate login over TLS)."""
        return [n.tls_url(vhost) if tls else n.url(vhost) for n in self.nodes]

    def add_vhost(self, name: str) -> None:
        """A vhost guest may use fully (created once, cluster-wide)."""
        node = next(n for n in self.nodes if n.running())
        node.ctl("add_vhost", name)
        node.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")

    def save(self) -> None:
        """Write ``cluster.json``: node names, PIDs and ports (for ``stop``)."""
        (self.dir / "cluster.json").write_text(json.dumps(
            {"nodes": [n.describe() for n in self.nodes]}, indent=2))

    def stop(self) -> None:
        """Stop every node (killing those that will not stop)."""
        for node in reversed(self.nodes):
            node.stop()

    def close(self) -> None:
        """Stop and, for a temporary directory, delete everything."""
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _stop_recorded(folder: Path) -> int:
    state = folder / "cluster.json"
    if not state.is_file():
        print(f"no cluster recorded in {state}", file=sys.stderr)
        return 1
    for entry in json.loads(state.read_text())["nodes"]:
        pid = int(entry["pid"])
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        print(f"stopped {entry['name']} (pid {pid})")
    state.unlink()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``dirac-rabbitmq-cluster start|stop``: a local RabbitMQ cluster for trying things."""
    parser = argparse.ArgumentParser(
        prog="dirac-rabbitmq-cluster",
        description="Start N local RabbitMQ nodes as one cluster (no Docker), or stop them. "
                    "'start' prints the comma-separated URL list for DIRAC_BROKER_URL.")
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start", help="start and join the nodes; print their URLs")
    start.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    start.add_argument("--dir", required=True, type=Path,
                       help="directory for the nodes' data, logs and cluster.json")
    start.add_argument("--tls", type=Path, metavar="CERTDIR",
                       help="also listen for amqps:// with certificate login, using the "
                            "ca.pem, host.pem, host.key of CERTDIR (dirac-make-test-certs)")
    start.add_argument("--wal-sync-method", choices=WAL_SYNC_METHODS,
                       help="Ra's write-ahead-log sync for quorum queues (default: "
                            "RabbitMQ's, datasync); 'none' is faster on a slow disk and "
                            "gives up durability against a power loss "
                            "(docs/configuration.md)")
    start.add_argument("--wal-write-strategy", choices=WAL_WRITE_STRATEGIES,
                       help="Ra's write-ahead-log write strategy (default: Ra's, default); "
                            "'sync_after_notify' confirms an enqueue before its sync has "
                            "finished: faster for sequential calls, and gives up "
                            "durability against a power loss during that sync "
                            "(docs/configuration.md)")
    stop = sub.add_parser("stop", help="stop the nodes recorded in DIR/cluster.json")
    stop.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.action == "stop":
        return _stop_recorded(args.dir)
    if (args.dir / "cluster.json").exists():
        parser.error(f"{args.dir} already holds a running cluster: stop it first")
    tls = None
    if args.tls:
        certs = args.tls.resolve()
        tls = {"ca": str(certs / "ca.pem"), "cert": str(certs / "host.pem"),
               "key": str(certs / "host.key")}
    cluster = LocalCluster(args.nodes, args.dir.resolve(), label="local", tls=tls,
                           wal_sync_method=args.wal_sync_method,
                           wal_write_strategy=args.wal_write_strategy)
    try:
        cluster.start()
    except NodeUnavailable as exc:
        print(f"dirac-rabbitmq-cluster: {exc}", file=sys.stderr)
        return 1
    for node in cluster.nodes:
        # The nodes outlive this command: forget them without stopping them.
        node.proc = None
    print(",".join(cluster.urls()))
    if tls:
        print(",".join(cluster.urls(tls=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
