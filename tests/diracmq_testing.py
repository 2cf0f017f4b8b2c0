"""Helpers for the integration tests: the broker, vhosts, worker processes, raw AMQP.

Used by tests/conftest.py (fixtures) and the tests under tests/integration/.
Nothing here fakes the broker: every helper talks to a real RabbitMQ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import msgpack
import pika
import pika.exceptions

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
EXT_DIR = TESTS_DIR / "ext"
#: The test extension whose handlers most tests serve (under a fresh System name).
TEST_EXTENSION = "diractest"
TEST_SYSTEM = "Test"

REQUEST_EXCHANGE = "dirac.rpc"  # docs/protocol.md: the one request exchange
READY_LINE = "worker ready"
_READY_PID = re.compile(r"worker ready: .*\(pid (\d+),")
_READY_SERVICES = re.compile(r"worker ready: .* serving (.+?) \(pid ")


class BrokerUnavailable(RuntimeError):
    """No broker could be found or started for the tests."""


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (None: remove) environment variables for the block (what workers inherit)."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        _set_environ(values)
        yield
    finally:
        _set_environ(saved)


def _set_environ(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# ---------------------------------------------------------------------- waiting
def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------ URLs
def mask_url(url: str) -> str:
    """The URL with its password hidden, for reports."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def url_with_vhost(url: str, vhost: str) -> str:
    """``url`` pointing at ``vhost`` instead (query options kept)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(vhost, safe="")))


def url_vhost(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def url_user(url: str) -> str:
    return pika.URLParameters(url).credentials.username


def is_local_host(url: str) -> bool:
    return (urlsplit(url).hostname or "localhost") in ("127.0.0.1", "localhost", "::1")


def free_closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- broker
def amqp_login(url: str, timeout: float = 3.0) -> None:
    """Open and close one AMQP connection to ``url``; raise on any failure."""
    params = pika.URLParameters(url)
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    params.retry_delay = 0
    conn = pika.BlockingConnection(params)
    conn.close()


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclasses.dataclass
class Broker:
    """The broker the test session uses."""

    #: ``DIRAC_BROKER_URL``, ``local`` or ``testcontainers``
    source: str
    url: str
    #: Runs ``rabbitmqctl <args>`` against this broker: (returncode, output); None if unusable.
    ctl: Callable[[list[str]], tuple[int, str]] | None = None
    container: Any = None
    note: str = ""

    @property
    def user(self) -> str:
        return url_user(self.url)

    def describe(self) -> str:
        isolation = ("one vhost per test module (rabbitmqctl), unique System names per test"
                     if self.ctl else "unique System names per test in "
                                      f"vhost {url_vhost(self.url)!r} (rabbitmqctl not usable)")
        text = f"{self.source}: {mask_url(self.url)}; isolation: {isolation}"
        return f"{text}; {self.note}" if self.note else text


def local_rabbitmqctl(args: list[str], timeout: float = 30.0) -> tuple[int, str]:
    try:
        done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, repr(exc)
    return done.returncode, done.stdout + done.stderr


def container_rabbitmqctl(container: Any) -> Callable[[list[str]], tuple[int, str]]:
    def run(args: list[str]) -> tuple[int, str]:
        code, output = container.get_wrapped_container().exec_run(["rabbitmqctl", *args])
        return code, output.decode(errors="replace")
    return run


def usable_rabbitmqctl(broker: Broker) -> Callable[[list[str]], tuple[int, str]] | None:
    """A rabbitmqctl runner that manages *this* broker, or None."""
    if os.environ.get("DIRACMQ_TEST_VHOSTS", "1") in ("0", "no", "false"):
        return None
    if broker.container is not None:
        ctl = container_rabbitmqctl(broker.container)
    elif is_local_host(broker.url) and shutil.which("rabbitmqctl"):
        ctl = local_rabbitmqctl
    else:
        return None
    code, _ = ctl(["-q", "list_vhosts"])
    return ctl if code == 0 else None


def start_testcontainer(reason: str) -> Broker:
    """RabbitMQ in a container; BrokerUnavailable (quickly) when Docker is not usable."""
    why = f"no RabbitMQ for the tests: {reason}, so testcontainers was tried"
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:  # docker missing, no daemon, no permission...
        raise BrokerUnavailable(
            f"{why}, but Docker is not usable here ({type(exc).__name__}: {exc}). "
            f"Start a local RabbitMQ or set DIRAC_BROKER_URL=amqp://user:pw@host:5672/%2F"
        ) from None
    try:
        from testcontainers.community.rabbitmq import RabbitMqContainer
    except ImportError:  # older testcontainers
        from testcontainers.rabbitmq import RabbitMqContainer
    try:
        container = RabbitMqContainer("rabbitmq:3.13-alpine").start()
    except Exception as exc:
        raise BrokerUnavailable(f"{why}; starting the RabbitMQ container failed: {exc!r}") \
            from exc
    host = container.get_container_host_ip()
    port = container.get_exposed_port(container.port)
    url = f"amqp://{container.username}:{container.password}@{host}:{port}/%2F"
    return Broker("testcontainers", url, container=container)


class Vhosts:
    """Vhosts for test modules: made ahead of need in the background, deleted after use.

    rabbitmqctl costs about 1 s a call (2-4 s per vhost on a busy 2-core machine), so a
    background thread keeps ``ahead`` vhosts ready while the tests run, up to ``needed``
    (the number the collected tests will ask for); :meth:`take` waits for one.
    """

    def __init__(self, ctl: Callable[[list[str]], tuple[int, str]], user: str,
                 needed: int = 0, ahead: int = 2) -> None:
        self.ctl = ctl
        self.user = user
        self.needed = needed
        self.ahead = ahead
        self.created: list[str] = []
        self.create_seconds = 0.0
        self.delete_failures: list[str] = []
        self._deleting: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._ready: list[str] = []
        self._made = 0
        self._taken = 0
        self._closed = False
        self._error: str | None = None
        self._filler = threading.Thread(target=self._fill, daemon=True, name="vhost maker")
        self._filler.start()

    def _create(self) -> str:
        name = f"diracmq-test-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        started = time.monotonic()
        for args in (["add_vhost", name],
                     ["set_permissions", "-p", name, self.user, ".*", ".*", ".*"]):
            code, output = self.ctl(["-q", *args])
            if code != 0:
                raise BrokerUnavailable(f"rabbitmqctl {' '.join(args)} failed: {output.strip()}")
        with self._cond:
            self.create_seconds += time.monotonic() - started
            self.created.append(name)
        return name

    def _fill(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._made < self.needed \
                        and len(self._ready) >= self.ahead:
                    self._cond.wait()
                if self._closed or self._made >= self.needed:
                    return
                self._made += 1
            try:
                name = self._create()
            except Exception as exc:
                with self._cond:
                    self._error = str(exc)
                    self._cond.notify_all()
                return
            with self._cond:
                self._ready.append(name)
                self._cond.notify_all()

    def take(self, timeout: float = 120.0) -> str:
        """A new vhost (the caller must :meth:`delete_later` it)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._taken += 1
            if self._taken <= self.needed:
                while not self._ready and self._error is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise BrokerUnavailable(f"no vhost made within {timeout:g}s")
                    self._cond.wait(remaining)
                if self._ready:
                    self._cond.notify_all()
                    return self._ready.pop(0)
                raise BrokerUnavailable(self._error or "cannot make vhosts")
        return self._create()  # more than foreseen: make one now

    def delete_later(self, name: str) -> None:
        def run() -> None:
            code, output = self.ctl(["-q", "delete_vhost", name])
            if code != 0:
                self.delete_failures.append(f"{name}: {output.strip()}")
        thread = threading.Thread(target=run, name=f"delete {name}", daemon=True)
        thread.start()
        self._deleting.append(thread)

    def close(self, timeout: float = 60.0) -> None:
        """Stop making vhosts, delete the unused ones, wait for every deletion."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._filler.join(timeout)
        with self._cond:
            unused, self._ready = self._ready, []
        for name in unused:
            self.delete_later(name)
        deadline = time.monotonic() + timeout
        for thread in self._deleting:
            thread.join(max(0.0, deadline - time.monotonic()))


def delete_queues(url: str, names: Iterable[str]) -> None:
    """Delete queues that are idle and empty (when the tests share a vhost with others)."""
    names = list(names)
    if not names:
        return
    with contextlib.suppress(pika.exceptions.AMQPError, OSError):
        conn = pika.BlockingConnection(pika.URLParameters(url))
        try:
            for name in names:
                # a queue still in use by someone else's worker fails here and is kept
                with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                    conn.channel().queue_delete(name, if_unused=True, if_empty=True)
        finally:
            conn.close()


# ------------------------------------------------------------- worker processes
def worker_command() -> list[str]:
    """How to run ``dirac-worker``: the console script next to this Python, if installed."""
    script = Path(sys.executable).with_name("dirac-worker")
    if script.exists():
        return [str(script)]
    found = shutil.which("dirac-worker")
    return [found] if found else [sys.executable, "-m", "diracmq.workers.cli"]


class WorkerProcess:
    """A ``dirac-worker`` subprocess whose stderr is read line by line (and kept)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path,
                 system: str = "") -> None:
        self.argv = argv
        self.system = system
        self.log_path = log_path
        self.lines: list[str] = []
        self.eof = False
        #: Exit status the teardown expects; None: do not check (e.g. SIGKILLed on purpose).
        self.expected_returncode: int | None = 0
        self._cond = threading.Condition()
        with log_path.with_suffix(".stdout").open("w") as stdout:
            self.proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,
                stderr=subprocess.PIPE, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name=f"stderr of {self.proc.pid}")
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.log_path.open("w") as log:
            for line in self.proc.stderr:
                log.write(line)
                log.flush()
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def diagnostics(self, why: str) -> str:
        return (f"{why}\n  command: {' '.join(self.argv)}\n  pid {self.pid}, returncode "
                f"{self.proc.poll()}\n  stderr ({self.log_path}):\n{self.stderr()}")

    def wait_for_lines(self, pattern: str, count: int = 1, timeout: float = 30.0) -> list[str]:
        """Wait until ``count`` stderr lines match ``pattern``; fail clearly otherwise."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [line for line in self.lines if regex.search(line)]
                if len(found) >= count:
                    return found
                if self.eof:
                    raise AssertionError(self.diagnostics(
                        f"worker exited before {count} line(s) matching {pattern!r}"))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(self.diagnostics(
                        f"no {count} line(s) matching {pattern!r} within {timeout:g}s"))
                self._cond.wait(remaining)

    def services(self) -> set[str]:
        """The services this worker said it serves (from its "worker ready" lines)."""
        with self._cond:
            return {service.strip() for line in self.lines
                    if (m := _READY_SERVICES.search(line)) for service in m.group(1).split(",")}

    def wait_ready(self, count: int = 1, timeout: float = 30.0) -> list[int]:
        """Wait for ``count`` "worker ready" lines; return the pids that logged them."""
        lines = self.wait_for_lines(READY_LINE, count, timeout)
        return [int(m.group(1)) for m in map(_READY_PID.search, lines) if m]

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL on purpose: the teardown will not expect a clean exit."""
        self.expected_returncode = None
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the exit (SIGKILL after ``timeout``, and fail); return the status."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            self._reader.join(5)
            raise AssertionError(self.diagnostics(
                f"worker still running {timeout:g}s after it was told to stop; killed")) from None
        self._reader.join(5)
        return code

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for the exit; return the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)


class WorkerPool:
    """Starts ``dirac-worker`` processes for a test (or a module) and stops them after."""

    def __init__(self, broker_url: str, workdir: Path, private_vhost: bool) -> None:
        self.broker_url = broker_url
        self.workdir = workdir
        self.alias_root = workdir / "aliases"
        self.record_dir = workdir / "records"
        self.alias_root.mkdir(parents=True, exist_ok=True)
        self.record_dir.mkdir(parents=True, exist_ok=True)
        self.private_vhost = private_vhost
        self.workers: list[WorkerProcess] = []
        self._aliases: dict[str, str] = {}  # System -> alias package

    # Systems -------------------------------------------------------------------
    #: What :meth:`new_system` aliases: every ``*Handler.py`` of this extension's System,
    #: under a fresh System name starting with ``ALIAS_PREFIX``.
    ALIAS_EXTENSION = TEST_EXTENSION
    ALIAS_SYSTEM = TEST_SYSTEM
    ALIAS_PREFIX = "T"

    def new_system(self) -> str:
        """A fresh System name serving the ``ALIAS_EXTENSION`` handlers (own queues)."""
        ext, base = self.ALIAS_EXTENSION, self.ALIAS_SYSTEM
        system = self.ALIAS_PREFIX + uuid.uuid4().hex[:12]
        package = f"d{self.ALIAS_PREFIX.lower()}alias_" + system.lower()
        service_dir = self.alias_root / package / f"{system}System" / "Service"
        service_dir.mkdir(parents=True)
        for init in (service_dir.parent.parent, service_dir.parent, service_dir):
            (init / "__init__.py").write_text("")
        source = EXT_DIR / ext / f"{base}System" / "Service"
        for handler in sorted(source.glob("*Handler.py")):
            name = handler.stem
            (service_dir / handler.name).write_text(
                f'"""{system}/{name[:-7]}: {ext}\'s {base}/{name[:-7]} under a fresh '
                f'System name."""\n\nfrom {ext}.{base}System.Service.{name} '
                f'import {name}\n\n__all__ = ["{name}"]\n')
        self._aliases[system] = package
        return system

    def records(self) -> list[dict]:
        """The executions recorded by ``Work.record`` in this pool's workers."""
        path = self.record_dir / "executions.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # Processes -----------------------------------------------------------------
    def start(self, system: str | None = None, *, processes: int = 1, threads: int | None = None,
              extension: str | None = None, args: Iterable[str] = (), cwd: Path | None = None,
              pythonpath: Iterable[Path] | None = None, wait_ready: bool = True,
              ready_count: int | None = None, timeout: float = 30.0) -> WorkerProcess:
        """Start ``dirac-worker <system>``; by default wait until it logs "worker ready".

        ``system=None`` makes a fresh System (see :meth:`new_system`).  A System made by
        :meth:`new_system` gets its alias package as ``--extension``.  ``pythonpath``
        replaces the default (the alias root and tests/ext).
        """
        system = system or self.new_system()
        argv = [*worker_command(), system, "--graceful-timeout", "15"]
        ext = extension or self._aliases.get(system)
        if ext:
            argv += ["--extension", ext]
        if processes != 1:
            argv += ["--processes", str(processes)]
        if threads is not None:
            argv += ["--threads", str(threads)]
        argv += list(args)
        env = dict(os.environ)
        env.update({
            "DIRAC_BROKER_URL": self.broker_url,
            "DIRACTEST_RECORD_DIR": str(self.record_dir),
            "PYTHONUNBUFFERED": "1",
            "DIRAC_LOG_LEVEL": "INFO",
        })
        # Workers keep state (the JobDB) in their data dir: never the user's ~/.dirac.
        env.setdefault("DIRAC_DATA_DIR", str(self.workdir / "data"))
        paths = [self.alias_root, EXT_DIR] if pythonpath is None else list(pythonpath)
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(map(str, paths))
        else:
            env.pop("PYTHONPATH", None)
        log_path = self.workdir / f"worker-{len(self.workers)}-{system}.stderr"
        worker = WorkerProcess(argv, env, cwd or self.workdir, log_path, system)
        self.workers.append(worker)
        if wait_ready:
            worker.wait_ready(ready_count or processes, timeout)
        return worker

    def stop_all(self) -> list[str]:
        """Stop every worker (SIGTERM); return a description of each unclean exit."""
        problems = []
        for worker in reversed(self.workers):
            try:
                code = worker.stop() if worker.returncode is None else worker.wait()
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if worker.expected_returncode is not None and code != worker.expected_returncode:
                problems.append(worker.diagnostics(
                    f"worker exited with {code}, expected {worker.expected_returncode}"))
        if not self.private_vhost:  # shared vhost: remove the queues our workers declared
            delete_queues(self.broker_url, sorted({
                "dirac.rpc." + service.replace("/", ".")
                for worker in self.workers for service in worker.services()}))
        self.workers.clear()
        return problems


# ------------------------------------------------------------------- raw AMQP
class _Default:
    pass


DEFAULT = _Default()


class RawRPC:
    """A bare pika requester that speaks the wire protocol by hand (no diracmq code)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.user = url_user(url)
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.conn.channel()
        self.channel.confirm_delivery()  # an unroutable mandatory publish raises
        # Direct Reply-to: a worker replies only to the caller's own reply destination
        # (Direct Reply-to, or a dirac.reply.<user>. queue), never to a queue of any name.
        self.reply_queue = "amq.rabbitmq.reply-to"
        self.replies: dict[str, tuple[pika.BasicProperties, bytes]] = {}
        self.channel.basic_consume(self.reply_queue, self._on_reply, auto_ack=True)

    def _on_reply(self, _ch: Any, _method: Any, props: pika.BasicProperties,
                  body: bytes) -> None:
        self.replies[props.correlation_id] = (props, body)

    def publish(self, service: str, body: bytes, *, corr_id: str | None = None,
                reply_to: Any = DEFAULT, user_id: str | None = None,
                headers: dict | None = None, content_type: str = "application/x-msgpack",
                expiration: str | None = None) -> str:
        """Publish ``body`` to the request exchange for ``service``; return the correlation id."""
        corr_id = corr_id or uuid.uuid4().hex
        props = pika.BasicProperties(
            content_type=content_type, correlation_id=corr_id, message_id=corr_id,
            reply_to=self.reply_queue if reply_to is DEFAULT else reply_to,
            user_id=user_id, headers=headers, expiration=expiration)
        self.channel.basic_publish(REQUEST_EXCHANGE, service, body, props, mandatory=True)
        return corr_id

    def wait_reply(self, corr_id: str, timeout: float = 10.0) -> tuple[pika.BasicProperties,
                                                                        bytes]:
        deadline = time.monotonic() + timeout
        while corr_id not in self.replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no reply for {corr_id} within {timeout:g}s")
            self.conn.process_data_events(time_limit=min(remaining, 0.2))
        return self.replies.pop(corr_id)

    def request(self, service: str, body: bytes, timeout: float = 10.0, **kw: Any) -> dict:
        """Publish ``body`` and return the decoded reply (checking its envelope)."""
        corr_id = self.publish(service, body, **kw)
        props, reply = self.wait_reply(corr_id, timeout)
        assert props.correlation_id == corr_id
        assert props.content_type == "application/x-msgpack"
        return unpack(reply)

    def call(self, service: str, method: Any, *args: Any, **kw: Any) -> dict:
        """A well-formed v1 request, as the protocol describes it."""
        return self.request(service, pack({"v": 1, "method": method, "args": list(args)}), **kw)

    def close(self) -> None:
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):
            if self.conn.is_open:
                self.conn.close()


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def assert_same(got: Any, want: Any, where: str = "value") -> None:
    """Equal, with exactly the same types and dict key order all the way down.

    A tuple is not a list, an int key is not a str key, a naive datetime stays naive
    (with the same microseconds) and an aware one keeps its UTC offset: what the codec
    promises (docs/protocol.md, section 5).
    """
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for (gk, gv), (wk, wv) in zip(got.items(), want.items(), strict=True):
            assert_same(gk, wk, f"{where} key {wk!r}")
            assert_same(gv, wv, f"{where}[{wk!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"{where}: length"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, _dt.datetime):
        assert got == want and got.utcoffset() == want.utcoffset(), f"{where}: {got!r}"
        assert got.microsecond == want.microsecond, f"{where}: {got!r}"
        assert (got.tzinfo is None) == (want.tzinfo is None), f"{where}: {got!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"
