"""A private RabbitMQ node for the fault tests: own node name, ports, cookie and data dir.

The fault tests restart and kill *this* node, never the machine's shared broker on
port 5672.  It runs the Debian package's real start scripts
(``/usr/lib/rabbitmq/bin``), not the ``/usr/sbin`` wrappers: those switch to the
``rabbitmq`` user (which cannot write our temporary directory) and overwrite the
shared node's ``/var/log/rabbitmq/startup_log``.

Everything the node writes lives in one temporary directory:

* ``home/.erlang.cookie``: its own cookie; ``HOME`` points there for the node *and*
  for our ``rabbitmqctl``, so the two share it (and never see the shared node's);
* ``env.conf``: an empty ``rabbitmq-env.conf`` so ``/etc/rabbitmq/rabbitmq-env.conf``
  (``NODENAME=rabbit@localhost``) does not leak in;
* ``rabbitmq.conf``, ``enabled_plugins``, ``mnesia/``, ``log/``.

Only loopback is used: AMQP on 127.0.0.1:<free port>, Erlang distribution on
127.0.0.1:<another free port>, epmd on 127.0.0.1 (``ERL_EPMD_ADDRESS``).

The node runs in the foreground as our subprocess (in its own process group), so
:meth:`RabbitNode.kill` can crash it like a power cut, and :meth:`close` can always
reap it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from diracmq.broker import localrabbit

__all__ = ["NodeUnavailable", "RabbitNode", "find_rabbitmq_scripts"]

# The start scripts, port helpers and the error are broker/localrabbit.py's (the
# dirac-rabbitmq-cluster command's nodes and this one are started the same way).
NodeUnavailable = localrabbit.NodeUnavailable
find_rabbitmq_scripts = localrabbit._scripts
free_port = localrabbit._free_port
_port_open = localrabbit.port_open


class RabbitNode:
    """One private RabbitMQ node; ``start()`` it, restart it in tests, ``close()`` it."""

    def __init__(self, label: str = "fault") -> None:
        self.server_script, self.ctl_script = find_rabbitmq_scripts()
        self.name = f"diracmq-{label}-{os.getpid()}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"diracmq-{label}-node-"))
        self.home = self.dir / "home"
        self.log_dir = self.dir / "log"
        self.mnesia = self.dir / "mnesia"
        for folder in (self.home, self.log_dir, self.mnesia):
            folder.mkdir()
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        (self.dir / "env.conf").write_text("# private node: nothing from /etc/rabbitmq\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = false\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = false\n"
            "log.file.level = info\n")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("RABBITMQ_", "ERL_"))}
        self.env.update({
            "HOME": str(self.home),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "env.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.mnesia),
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.dir / "node.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._closed = False
        atexit.register(self.close)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def url_for(self, vhost: str) -> str:
        from urllib.parse import quote

        return f"amqp://guest:guest@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    # ---------------------------------------------------------------- control
    def ctl(self, *args: str, timeout: float = 30.0, check: bool = True) -> str:
        """``rabbitmqctl -n <our node> args``: its output; raise on failure when ``check``."""
        try:
            done = subprocess.run([self.ctl_script, "-n", self.name, *args], env=self.env,
                                  capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise NodeUnavailable(f"rabbitmqctl {' '.join(args)}: no answer in {timeout}s") \
                from exc
        if check and done.returncode != 0:
            raise NodeUnavailable(f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): "
                                  f"{(done.stdout + done.stderr).strip()[-2000:]}")
        return done.stdout

    def start(self, timeout: float = 60.0) -> None:
        """Start the node (foreground subprocess) and wait until it serves AMQP."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the node is already running")
        console = (self.log_dir / "console.out").open("a")
        self.proc = subprocess.Popen([self.server_script], env=self.env, cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=console,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        console.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.proc.poll() is not None:
                raise NodeUnavailable(f"rabbitmq-server exited with {self.proc.returncode} "
                                      f"before listening:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise NodeUnavailable(f"node {self.name} not listening on {self.port} after "
                                      f"{timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.1)
        remaining = max(5.0, deadline - time.monotonic())
        self.ctl("await_startup", "--timeout", str(int(remaining)), timeout=remaining + 10)

    def stop_app(self) -> None:
        """``rabbitmqctl stop_app``: the broker closes every connection (CONNECTION_FORCED)."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", "30", timeout=40)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node cleanly (SIGTERM: the start script runs a graceful shutdown)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap_group()

    def kill(self) -> None:
        """Crash the node: SIGKILL its whole process group (the Erlang VM and helpers)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._wait_port_closed()

    def _reap_group(self) -> None:
        """The shell may exit before the VM: make sure nothing of the group survives."""
        if self.proc is None:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._wait_port_closed()

    def _wait_port_closed(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def restart(self, hard: bool = False) -> None:
        """Full restart of the VM: graceful stop (or ``hard``: SIGKILL), then start."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def add_vhost(self, name: str) -> str:
        """Create a vhost that guest may use fully; its AMQP URL."""
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return self.url_for(name)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.log_dir.glob("*")):
            if path.is_file():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def close(self) -> None:
        """Stop the node (killing it if need be) and delete its directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop(timeout=20)
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.kill()
            shutil.rmtree(self.dir, ignore_errors=True)
