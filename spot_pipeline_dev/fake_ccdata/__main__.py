"""Run the fake CCData server in the foreground: `python -m spot_pipeline_dev.fake_ccdata --help`."""

import argparse
import signal
import threading
from collections.abc import Sequence

from spot_pipeline_dev.fake_ccdata.server import FakeCCDataServer


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of the fake server."""
    parser = argparse.ArgumentParser(
        prog="python -m spot_pipeline_dev.fake_ccdata",
        description="Serve the default fake CCData dataset (data-api and min-api) until SIGINT/SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--data-port", type=int, default=8765, help="data-api port (0 = any free port)")
    parser.add_argument("--min-port", type=int, default=8766, help="min-api port (0 = any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before every answer")
    parser.add_argument(
        "--key-limit",
        action="append",
        default=[],
        type=_window_limit,
        metavar="WINDOW=N",
        help="answer 429 beyond N requests per window (second, minute, hour, day, month); repeatable, "
        "e.g. --key-limit second=5 --key-limit minute=60",
    )
    return parser.parse_args(argv)


def _window_limit(text: str) -> tuple[str, int]:
    window, _, limit = text.partition("=")
    if not limit.isdigit():
        raise argparse.ArgumentTypeError(f"expected WINDOW=N such as minute=60, got {text!r}")
    return window.strip().lower(), int(limit)


def main(argv: Sequence[str] | None = None) -> None:
    """Start the server, print its URLs, and stop cleanly on SIGINT or SIGTERM."""
    arguments = parse_arguments(argv)
    server = FakeCCDataServer(host=arguments.host, data_port=arguments.data_port, min_port=arguments.min_port)
    server.latency_seconds = arguments.latency
    server.limit_key(**dict(arguments.key_limit))
    stop_requested = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop_requested.set())
    with server:
        print(f"data-api: {server.data_api_url}", flush=True)
        print(f"min-api:  {server.min_api_url}", flush=True)
        stop_requested.wait()
    print("fake CCData server stopped", flush=True)


if __name__ == "__main__":
    main()
