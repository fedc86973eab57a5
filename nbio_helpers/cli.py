"""The command line: ``python -m nbio_helpers COMMAND ...`` (or ``nbio COMMAND ...``).

Commands::

    serve --model MODEL [--host 127.0.0.1] [--port 8080] [--interval S]
        run one server model in the foreground until Ctrl-C or SIGTERM
    client [--host 127.0.0.1] [--port 8080] [--timeout S]
        the terminal client: each line of input is sent, each reply printed
    load [--host] [--port] [--clients N] [--messages M] [--size B] [--timeout S] [--json]
        N concurrent clients x M messages against a running server; every echo is checked

More commands come from other modules of the package, when they are there: each defines
``configure_parser(parser)`` and ``run(args) -> int`` (see ``OPTIONAL_COMMANDS``).

Exit codes: 0 success, 1 failure (refused connection, failed load, server error),
2 bad arguments (with a usage message).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import signal
import sys
import time
import warnings

from . import __version__
from .clients import run_load
from .models import MODELS, start_server
from .terminal import format_address, terminal_client

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

OPTIONAL_COMMANDS = {
    # command: (module, one-line help)
    "student-edition": ("nbio_helpers.student", "write the student edition (solutions removed)"),
    "execute-notebooks": ("nbio_helpers.notebook_tools", "re-execute notebooks in a fresh kernel"),
    "bench": ("nbio_helpers.bench", "measure every server model side by side"),
    "site": ("nbio_helpers.site", "build the series' website (needs the [site] extra)"),
}
"""Commands whose code lives in another module; absent if that module is not installed."""


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)   # bad arguments: usage, SystemExit(2)
    return args.run(args)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. An optional command's module is imported only when ``argv``
    asks for that command, so that ``serve`` starts fast."""
    parser = argparse.ArgumentParser(
        prog="nbio" if os.path.basename(sys.argv[0]) in ("nbio", "nbio.exe")
        else "python -m nbio_helpers",
        description="Echo servers (every byte back upper-cased) in six IO models, "
                    "a terminal client and a load generator.")
    parser.add_argument("--version", action="version", version=f"nbio_helpers {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run a server until Ctrl-C or SIGTERM",
                                description="Run one server model in the foreground.")
    serve.add_argument("--model", required=True, choices=list(MODELS), help="the IO model")
    _add_address(serve, serving=True)
    serve.add_argument("--interval", type=_seconds, default=None,
                       help="polling model only: seconds of sleep between rounds (0 = busy)")
    serve.set_defaults(run=run_serve, usage_error=serve.error)

    client = commands.add_parser("client", help="send each input line, print each reply",
                                 description="The terminal client: one connection, each line "
                                             "of standard input sent, each reply printed.")
    _add_address(client)
    client.add_argument("--timeout", type=_seconds, default=5.0,
                        help="seconds to wait for the connection and each reply (default 5)")
    client.set_defaults(run=run_client)

    load = commands.add_parser("load", help="N concurrent clients x M messages, echoes checked",
                               description="Load a running server; every echo is checked.")
    _add_address(load)
    load.add_argument("--clients", type=_positive, default=100, help="concurrent clients (100)")
    load.add_argument("--messages", type=_positive, default=20, help="messages per client (20)")
    load.add_argument("--size", type=_positive, default=64, help="bytes per message (64)")
    load.add_argument("--timeout", type=_seconds, default=60.0, help="give up after S seconds")
    load.add_argument("--json", action="store_true", help="print the summary as JSON")
    load.set_defaults(run=run_load_command)

    wanted = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, (module_name, help_text) in OPTIONAL_COMMANDS.items():
        if importlib.util.find_spec(module_name) is None:
            continue
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module = importlib.import_module(module_name)
            module.configure_parser(sub)
            sub.set_defaults(run=module.run)
    return parser


# ---------------------------------------------------------------------------- commands
def run_serve(args) -> int:
    """``serve``: start the server, print ``listening on HOST:PORT``, wait for a signal."""
    options = {"host": args.host, "port": args.port, "name": "cli",
               "record_events": False}   # a long-running server: counters only
    if args.interval is not None:
        if args.model != "polling":
            args.usage_error("--interval applies to --model polling only")  # exits 2
        options["interval"] = args.interval
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            server = start_server(args.model, **options)
        except OSError as exc:
            print(f"nbio serve: cannot listen on {format_address((args.host, args.port))}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 1
    for warning in caught:  # e.g. "reachable from the network": one plain line
        print(f"warning: {warning.message}", file=sys.stderr)

    with _stop_signals():       # from here on, SIGINT and SIGTERM stop the server cleanly
        try:
            print(f"listening on {format_address(server.address)}", flush=True)
            print(f"{args.model} server running; Ctrl-C to stop", file=sys.stderr, flush=True)
            while server.running:   # ends early only if the loop died
                time.sleep(0.5)     # a signal interrupts the sleep at once
        except KeyboardInterrupt:
            pass
        finally:
            _ignore_stop_signals()  # a second Ctrl-C must not cut the clean stop short
            error = _stop(server)
    if error is not None:
        print(f"nbio serve: the {args.model} loop failed: {type(error).__name__}: {error}",
              file=sys.stderr)
        return 1
    print("stopped", file=sys.stderr)
    return 0


def run_client(args) -> int:
    """``client``: the terminal client (see :mod:`nbio_helpers.terminal`)."""
    return terminal_client((args.host, args.port), timeout=args.timeout)


def run_load_command(args) -> int:
    """``load``: :func:`~nbio_helpers.run_load`; exit 0 only if every echo came back right."""
    result = run_load((args.host, args.port), clients=args.clients, messages=args.messages,
                      size=args.size, timeout=args.timeout)
    summary = result.summary()
    if args.json:
        # NaN (no latency measured) is not JSON: write null instead.
        print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                          for k, v in summary.items()}))
    else:
        verdict = "ok" if result.ok else "FAILED"
        print(f"{result.clients} clients x {result.messages} messages x {result.size} B "
              f"-> {format_address((args.host, args.port))}: {verdict}")
        print(f"  completed      {result.completed} of {result.clients * result.messages}")
        print(f"  elapsed        {result.elapsed:.3f} s")
        print(f"  throughput     {result.messages_per_second:,.0f} messages/s")
        print(f"  median latency {result.median_latency * 1e3:.3f} ms")
        print(f"  p99 latency    {result.p99_latency * 1e3:.3f} ms")
        for error in result.errors[:10]:
            print(f"  error: {error}")
        if len(result.errors) > 10:
            print(f"  ... and {len(result.errors) - 10} more errors")
    return 0 if result.ok else 1


# ---------------------------------------------------------------------------- helpers
def _add_address(parser, serving: bool = False) -> None:
    if serving:
        host_help = (f"address to listen on (default {DEFAULT_HOST}; an address that is not "
                     "loopback is reachable from the network)")
        port_help = f"TCP port (default {DEFAULT_PORT}; 0 = any free port)"
    else:
        host_help = f"the server's address (default {DEFAULT_HOST})"
        port_help = f"the server's TCP port (default {DEFAULT_PORT})"
    parser.add_argument("--host", default=DEFAULT_HOST, help=host_help)
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=port_help)


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, not {value}")
    return value


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or math.isinf(value):   # also refuses nan
        raise argparse.ArgumentTypeError(f"seconds must be >= 0, not {text}")
    return value


def _stop(server) -> Exception | None:
    """Stop ``server``; return the exception that killed its loop, if any."""
    try:
        server.stop()
    except Exception as exc:
        return exc
    return None


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                     if hasattr(signal, name))


@contextlib.contextmanager
def _stop_signals():
    """While inside: SIGTERM, like SIGINT (Ctrl-C), raises KeyboardInterrupt in the main
    thread. The previous handlers are put back on the way out."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ignore_stop_signals() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
