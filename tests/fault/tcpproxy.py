"""A TCP proxy on 127.0.0.1 that the fault tests put between a party and the broker.

``proxy.cut()`` closes every connection going through it now (the party sees its
connection drop; new connections go through again), ``proxy.stall()`` stops
forwarding in both directions without closing anything (what a network partition
looks like: heartbeats stop arriving, nothing is reset, even a close by the far
side is held back), ``proxy.resume()`` lets everything through again, and
``proxy.refuse(True)`` closes new connections at once (the broker "unreachable").

Two threads per connection copy bytes; a stall parks them between ``recv`` and
``send``.  Give each party (the client, a worker) its own proxy to cut or stall it
alone.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from urllib.parse import urlsplit, urlunsplit

__all__ = ["TcpProxy"]


class _Pair:
    """One proxied connection: the party's socket and ours to the broker."""

    def __init__(self, proxy: TcpProxy, downstream: socket.socket,
                 upstream: socket.socket) -> None:
        self.proxy = proxy
        self.down = downstream
        self.up = upstream
        self.closed = False
        self._lock = threading.Lock()

    def start(self) -> None:
        for src, dst, name in ((self.down, self.up, "up"), (self.up, self.down, "down")):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True,
                             name=f"proxy {self.proxy.port} {name}").start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            # Stalled: hold this chunk (or this end-of-stream) until resumed or cut.
            while not self.proxy._flowing.wait(0.05):
                if self.closed:
                    return
            if self.closed:
                return
            if not data:
                self.close()
                return
            try:
                dst.sendall(data)
            except OSError:
                self.close()
                return
            with self.proxy._lock:
                self.proxy.bytes_forwarded += len(data)

    def close(self, reset: bool = False) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.down, self.up):
            with contextlib.suppress(OSError):
                if reset:  # RST instead of FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self.proxy._forget(self)


class TcpProxy:
    """Forward 127.0.0.1:<port> to ``upstream_host:upstream_port``, with faults on demand."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing = False
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._closed = False
        #: Connections accepted so far (a reconnect shows up here).
        self.accepted = 0
        self.bytes_forwarded = 0
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name=f"proxy {self.port} accept")
        self._thread.start()

    def url(self, broker_url: str) -> str:
        """``broker_url`` going through this proxy instead."""
        parts = urlsplit(broker_url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        return urlunsplit(parts._replace(netloc=netloc))

    def _accept(self) -> None:
        while not self._closed:
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            if self._refusing:
                with contextlib.suppress(OSError):
                    down.close()
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=5)
                up.settimeout(None)
            except OSError:  # the broker is down: so is the connection through us
                with contextlib.suppress(OSError):
                    down.close()
                continue
            for sock in (down, up):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(self, down, up)
            with self._lock:
                self._pairs.add(pair)
            pair.start()

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)

    @property
    def connections(self) -> int:
        """Connections open through the proxy right now."""
        with self._lock:
            return len(self._pairs)

    def cut(self, reset: bool = False) -> int:
        """Close every current connection (FIN, or RST with ``reset``); how many."""
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close(reset=reset)
        return len(pairs)

    def stall(self) -> None:
        """Stop forwarding (both ways, all connections, new ones too) without closing."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def refuse(self, refusing: bool = True) -> None:
        """Close new connections as soon as they are accepted (existing ones are kept)."""
        self._refusing = refusing

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut()
        self._flowing.set()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
