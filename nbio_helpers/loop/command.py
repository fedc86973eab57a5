"""``python -m nbio_helpers chat``: the line chat of notebook 06, for classroom demos.

Run it in one terminal, then ``nc 127.0.0.1 8080`` in several others (``telnet`` or
``socat - TCP:127.0.0.1:8080`` work too): each is asked a name, then every line typed goes to
the others. Ctrl-C (or SIGTERM) stops it; it exits 0::

    python -m nbio_helpers chat                          # 127.0.0.1:8080, our coroutine loop
    python -m nbio_helpers chat --port 9000 --step callbacks --idle-timeout 600
    python -m nbio_helpers chat --host 0.0.0.0           # reachable from the network: warns

Exit codes: 0 after Ctrl-C, 1 if it cannot listen or the loop failed, 2 for a bad argument.
"""

from __future__ import annotations

import sys
import warnings

from nbio_helpers.cli.args import seconds, whole_number_option
from nbio_helpers.cli.main import add_address_arguments, ignore_stop_signals, stop_signals
from nbio_helpers.cli.terminal import format_address
from nbio_helpers.framing import MAX_LINE
from nbio_helpers.loop import CHAT_SERVERS


def configure_parser(parser) -> None:
    """Add the ``chat`` command's options to ``parser``."""
    parser.description = (
        "A line chat server: each client is asked a name, then every line "
        "it sends goes to the others. Talk to it with nc HOST PORT."
    )
    add_address_arguments(parser, serving=True)
    parser.add_argument(
        "--step",
        choices=list(CHAT_SERVERS),
        default="coroutines",
        help="which of notebook 06's servers runs it (default coroutines: "
        "async/await on our own loop)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=seconds(above=0, most=7 * 24 * 3600),
        default=None,
        metavar="SECONDS",
        help="disconnect a client silent that long (steps timers, coroutines "
        "and asyncio; default: never)",
    )
    whole_number_option(
        parser,
        "--max-line",
        most=64 * 1024 * 1024,
        default=MAX_LINE,
        metavar="BYTES",
        help=f"longest line accepted (default {MAX_LINE})",
    )
    parser.set_defaults(usage_error=parser.error)


def run(args) -> int:
    """Start the chat server, print ``listening on HOST:PORT``, run until a signal."""
    options = {
        "host": args.host,
        "port": args.port,
        "name": "cli-chat",
        "record_events": False,
        "max_line": args.max_line,
    }
    if args.idle_timeout is not None:
        if args.step in ("callbacks", "generators"):
            args.usage_error(
                f"--idle-timeout needs timers: --step timers, coroutines or "
                f"asyncio, not {args.step}"
            )
        options["idle_timeout"] = args.idle_timeout
    elif args.step == "timers":
        options["idle_timeout"] = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            server = CHAT_SERVERS[args.step](**options).start()
        except OSError as exc:
            print(
                f"nbio chat: cannot listen on {format_address((args.host, args.port))}: "
                f"{exc.strerror or exc}",
                file=sys.stderr,
            )
            return 1
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    with stop_signals() as stop_requested:
        try:
            address = format_address(server.address)
            print(f"listening on {address}", flush=True)
            host, _, port = address.rpartition(":")
            print(
                f"chat server ({args.step}) running; connect with: nc {host.strip('[]')} "
                f"{port}; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            while server.running and not stop_requested.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            ignore_stop_signals()
            try:
                server.stop()
                error = None
            except Exception as exc:  # the loop died: say so, no traceback
                error = exc
    if error is not None:
        print(f"nbio chat: the loop failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print("stopped", file=sys.stderr)
    return 0


__all__ = ["configure_parser", "run"]
