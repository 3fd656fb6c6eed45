"""A local Slack-style incoming webhook: a real HTTP server that keeps the messages it accepts.

It answers a POST of JSON with a string `text` on its one webhook path (a token in the path, as
Slack's are) with 200 "ok", and refuses like Slack: 400 "invalid_payload" or "no_text", 404
"no_service" for another path. It misbehaves on demand: `fail_next` answers an HTTP status,
`stall_next` keeps a request unanswered and then drops it, and `stop()` then `start()` takes it down
and brings it back on the same port. `messages` holds what it accepted (answered 2xx), in order.

Run it in the foreground to watch the alerts of a local Dagster:
`python -m spot_pipeline_dev.webhook_receiver --port 8767`, then
`ALERT_WEBHOOK_URL=http://127.0.0.1:8767/services/T0/B0/local-token`.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WEBHOOK_PATH = "/services/T0/B0/local-token"


@dataclass
class _Fault:
    remaining: int
    status: int | None  # None: stall, then drop the connection
    seconds: float = 0.0
    accept_first: int = 0  # POSTs accepted before the fault starts


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverHttpServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, answer = self.server.receiver._receive(self.path, body)
        if status is None:
            self.close_connection = True
            return
        encoded = answer.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the receiver keeps its own log."""


class _ReceiverHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # start() again on the same port right after stop()

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)


class WebhookReceiver:
    """A Slack-compatible incoming webhook on 127.0.0.1 that records the messages it accepts."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo: bool = False) -> None:
        self._host, self._port, self._echo = host, port, echo
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._stopping = threading.Event()
        self._http_server: _ReceiverHttpServer | None = None
        self._thread: threading.Thread | None = None
        self.messages: list[dict[str, Any]] = []
        self.attempts = 0

    def start(self) -> WebhookReceiver:
        """Listen (on the port of the previous start, if any) and serve in a background thread."""
        if self._http_server is not None:
            raise RuntimeError("the webhook receiver is already running")
        self._stopping.clear()
        self._http_server = _ReceiverHttpServer((self._host, self._port), self)
        self._port = self._http_server.server_address[1]
        self._thread = threading.Thread(target=self._http_server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until `start()`."""
        if self._http_server is None:
            return
        self._stopping.set()
        self._http_server.shutdown()
        self._http_server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http_server = self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The webhook URL to give ALERT_WEBHOOK_URL (its last path segment plays the secret token)."""
        return f"http://{self._host}:{self._port}{WEBHOOK_PATH}"

    def fail_next(self, count: int, status: int, *, after: int = 0) -> None:
        """Answer `count` POSTs with HTTP `status`, accepting none of them, once `after` more were
        accepted."""
        with self._lock:
            self._faults.append(_Fault(count, status, accept_first=after))

    def stall_next(self, count: int, seconds: float) -> None:
        """Keep the next `count` POSTs waiting `seconds` (or until `stop()`), then drop them unanswered."""
        with self._lock:
            self._faults.append(_Fault(count, None, seconds))

    def texts(self) -> list[str]:
        with self._lock:
            return [str(message.get("text")) for message in self.messages]

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            fault = next((fault for fault in self._faults if fault.remaining > 0), None)
            if fault is not None and fault.accept_first > 0:
                fault.accept_first -= 1
                return None
            if fault is not None:
                fault.remaining -= 1
            return fault

    def _receive(self, path: str, body: bytes) -> tuple[int | None, str]:
        """The answer to one POST (None: drop the connection), recording the messages accepted."""
        with self._lock:
            self.attempts += 1
        fault = self._take_fault()
        if fault is not None:
            if fault.status is None:
                self._stopping.wait(fault.seconds)
            return fault.status, "injected failure"
        if path != WEBHOOK_PATH:
            return 404, "no_service"
        try:
            message = json.loads(body)
        except ValueError:
            return 400, "invalid_payload"
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return 400, "no_text"
        with self._lock:
            self.messages.append(message)
        if self._echo:
            print(f"{message['text']}\n", flush=True)
        return 200, "ok"


def main(argv: Sequence[str] | None = None) -> None:
    """Serve in the foreground, printing every message accepted, until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m spot_pipeline_dev.webhook_receiver",
        description="A local Slack-compatible incoming webhook that prints the alerts it receives.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8767, help="port (default 8767, 0 = any free port)")
    arguments = parser.parse_args(argv)
    stop_requested = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop_requested.set())
    with WebhookReceiver(arguments.host, arguments.port, echo=True) as receiver:
        print(f"ALERT_WEBHOOK_URL={receiver.url}", flush=True)
        stop_requested.wait()


if __name__ == "__main__":
    main()
