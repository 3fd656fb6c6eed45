"""A TCP relay to the test database that a test can cut, as a server restart would: every open
connection is closed and new ones are refused for a while, then accepted again on the same port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

_CHUNK = 65_536


class RestartableProxy:
    """Relays 127.0.0.1:<port> to `target`; `restart(down_seconds)` plays a database restart."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down = False
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._accepting = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepting.start()

    def __enter__(self) -> RestartableProxy:
        return self

    def __exit__(self, *_: object | TracebackType) -> None:
        self._stopping.set()
        self._close_everything()

    def restart(self, down_seconds: float) -> None:
        """Drop every connection, refuse new ones for `down_seconds`, then listen again."""
        with self._lock:
            self._down = True
        self._close_everything()
        time.sleep(down_seconds)
        with self._lock:
            self._listener = self._listen(self.port)
            self._down = False

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        listener.settimeout(0.05)
        return listener

    def _close_everything(self) -> None:
        with self._lock:
            sockets = [self._listener, *self._open]
            self._open.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                listener = self._listener
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                time.sleep(0.01)  # closed for a restart, or nobody knocked
                continue
            self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self._target)
        except OSError:
            client.close()
            return
        with self._lock:
            if self._down:  # accepted just as the restart began: it goes down with the rest
                client.close()
                server.close()
                return
            self._open |= {client, server}
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(_CHUNK):
                sink.sendall(data)
        with self._lock:
            self._open -= {source, sink}
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
