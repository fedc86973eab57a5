"""The command line: ``python -m nbio_helpers COMMAND ...`` (or ``nbio COMMAND ...``).

Commands::

    serve --model MODEL [--host 127.0.0.1] [--port 8080] [--interval S] [--grace S]
        run one server model in the foreground until Ctrl-C or SIGTERM
    client [--host 127.0.0.1] [--port 8080] [--timeout S]
        the terminal client: each line of input is sent, each reply printed
    load [--host] [--port] [--clients N] [--messages M] [--size B] [--timeout S] [--json]
        N concurrent clients x M messages against a running server; every echo is checked

More commands come from other modules of the package, when they are there: each defines
``configure_parser(parser)`` and ``run(args) -> int`` (see ``OPTIONAL_COMMANDS``).

Exit codes: 0 success (also when the output pipe was closed early, as by ``| head``),
1 failure (refused connection, failed load, server error, output that cannot be written),
2 bad arguments (a usage line and one sentence, before any work), 130 interrupted (Ctrl-C:
one line, nothing left running).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import re
import signal
import sys
import threading
import time
import warnings

from nbio_helpers import __version__
from nbio_helpers.cli.args import (
    PORT,
    SERVER_PORT,
    ArgumentParser,
    host,
    seconds,
    whole_number_option,
)
from nbio_helpers.cli.output_guard import guarded_output
from nbio_helpers.cli.refusal_report import RefusalReport
from nbio_helpers.cli.terminal import connection_problem, format_address, terminal_client
from nbio_helpers.clients import LoadResult, run_load
from nbio_helpers.events import RECV
from nbio_helpers.limits import raise_fd_limit
from nbio_helpers.models import MODELS, start_server

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_GRACE = 1.0

OPTIONAL_COMMANDS = {
    # command: (module, one-line help)
    "student-edition": (
        "nbio_helpers.cli.student",
        "write the student edition (solutions removed)",
    ),
    "execute-notebooks": (
        "nbio_helpers.cli.notebook_tools",
        "re-execute notebooks in a fresh kernel",
    ),
    "bench": ("nbio_helpers.bench", "measure every server model side by side"),
    "chat": ("nbio_helpers.loop.command", "a line chat server for classroom demos (nc clients)"),
    "site": ("nbio_helpers.cli.site", "build the series' website (needs the [site] extra)"),
}
"""Commands whose code lives in another module; absent if that module is not installed."""

MAX_LOAD_CLIENTS = 10_000
MAX_MESSAGE = 64 * 1024 * 1024
MAX_LOAD_MEMORY = 1024 * 1024 * 1024
"""``load`` keeps each client's message, echo and expected echo in memory: at most this much."""
MAX_LOAD_MESSAGES = 10_000_000
"""``load`` keeps one latency per message (8 bytes each): at most this many in all."""


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit code.

    Never a traceback for what is not a bug: bad arguments exit 2 with a usage line, Ctrl-C
    exits 130 with one line, output that cannot be written ends quietly (see
    :mod:`nbio_helpers.cli.output_guard`).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = _prog()
    code = 1
    with guarded_output() as guard:
        try:
            args = build_parser(argv).parse_args(argv)  # bad arguments: usage, SystemExit(2)
            code = args.run(args)
        except SystemExit as exc:  # argparse: --help, --version, usage errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except KeyboardInterrupt:
            command = next((a for a in argv if not a.startswith("-")), "")
            print(f"{prog} {command}: interrupted".replace("  ", " "), file=sys.stderr, flush=True)
            code = 130
    if guard.failure is not None:
        code = guard.failure_exit_code(prog)
    return code


def _prog() -> str:
    return (
        "nbio"
        if os.path.basename(sys.argv[0]) in ("nbio", "nbio.exe")
        else "python -m nbio_helpers"
    )


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. An optional command's module is imported only when ``argv``
    asks for that command, so that ``serve`` starts fast."""
    parser = ArgumentParser(
        prog=_prog(),
        description=f"Echo servers (every byte back upper-cased) in {len(MODELS)} IO "
        "models, a terminal client, a load generator and a chat server.",
    )
    parser.add_argument("--version", action="version", version=f"nbio_helpers {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run a server until Ctrl-C or SIGTERM",
        description="Run one server model in the foreground.",
    )
    serve.add_argument("--model", required=True, choices=list(MODELS), help="the IO model")
    add_address_arguments(serve, serving=True)
    serve.add_argument(
        "--interval",
        type=seconds(least=0, most=60),
        default=None,
        help="polling model only: seconds of sleep between rounds (0 = busy; at most 60)",
    )
    serve.add_argument(
        "--grace",
        type=seconds(least=0, most=60),
        default=DEFAULT_GRACE,
        help="on Ctrl-C or SIGTERM: seconds left to send the replies to what "
        f"was read (default {DEFAULT_GRACE:g}; 0 = close at once); a "
        "second Ctrl-C stops at once",
    )
    serve.set_defaults(run=run_serve, usage_error=serve.error)

    client = commands.add_parser(
        "client",
        help="send each input line, print each reply",
        description="The terminal client: one connection, each line "
        "of standard input sent, each reply printed.",
    )
    add_address_arguments(client)
    client.add_argument(
        "--timeout",
        type=seconds(above=0, most=3600),
        default=5.0,
        help="seconds to wait for the connection, and for the reply to go on "
        "coming (default 5; at most 3600)",
    )
    client.set_defaults(run=run_client)

    load = commands.add_parser(
        "load",
        help="N concurrent clients x M messages, echoes checked",
        description="Load a running server; every echo is checked.",
    )
    add_address_arguments(load)
    whole_number_option(
        load,
        "--clients",
        most=MAX_LOAD_CLIENTS,
        default=100,
        help=f"concurrent clients (100; at most {MAX_LOAD_CLIENTS:,})",
    )
    whole_number_option(
        load, "--messages", most=MAX_LOAD_MESSAGES, default=20, help="messages per client (20)"
    )
    whole_number_option(
        load, "--size", most=MAX_MESSAGE, default=64, help="bytes per message (64; at most 64 MiB)"
    )
    load.add_argument(
        "--timeout",
        type=seconds(above=0, most=86400),
        default=60.0,
        help="give up after S seconds (default 60)",
    )
    load.add_argument("--json", action="store_true", help="print the summary as JSON")
    load.set_defaults(run=run_load_command, usage_error=load.error)

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
    """``serve``: start the server, print ``listening on HOST:PORT``, serve until a signal.

    The first Ctrl-C (or SIGTERM) stops gracefully (``Server.stop(grace=args.grace)``), a
    second one at once. Clients turned away are reported on stderr, one line per episode.
    """
    options = {
        "host": args.host,
        "port": args.port,
        "name": "cli",
        "record_events": False,
    }  # a long-running server: counters only
    if args.interval is not None:
        if args.model != "polling":
            args.usage_error("--interval applies to --model polling only")  # exits 2
        options["interval"] = args.interval
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            server = start_server(args.model, **options)
        except OSError as exc:
            print(
                f"nbio serve: cannot listen on {format_address((args.host, args.port))}: "
                f"{exc.strerror or exc}",
                file=sys.stderr,
            )
            return 1
    for warning in caught:  # e.g. "reachable from the network": one plain line
        print(f"warning: {warning.message}", file=sys.stderr)

    report = RefusalReport()
    try:
        with stop_signals() as stop_requested:  # SIGINT, SIGTERM: a graceful stop, then at once
            try:
                print(f"listening on {format_address(server.address)}", flush=True)
                print(f"{args.model} server running; Ctrl-C to stop", file=sys.stderr, flush=True)
                while server.running and not stop_requested.wait(0.5):  # ends if the loop died
                    _print_lines(report.update(server.refusals(), time.monotonic()))
                if server.running and args.grace > 0:
                    print(
                        f"stopping: no new clients; finishing {server.open_connections()} "
                        f"connection(s) for up to {args.grace:g} s (Ctrl-C again to stop at "
                        "once)",
                        file=sys.stderr,
                        flush=True,
                    )
                error = _stop(server, grace=args.grace)
                at_once = False
            except KeyboardInterrupt:  # the second signal
                ignore_stop_signals()
                error = _stop(server)
                at_once = True
    finally:
        server.stop()  # already stopped, unless the output failed (see output_guard)
    _print_lines(report.flush())
    if error is not None:
        print(
            f"nbio serve: the {args.model} loop failed: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return 1
    read = server.events.total_bytes(RECV)
    if at_once or args.grace == 0:
        print(f"stopped at once ({read:,} bytes read from clients)", file=sys.stderr)
        return 130 if at_once else 0
    if server.unfinished:
        print(
            f"stopped: {server.unfinished} connection(s) still open after {args.grace:g} s "
            f"were closed at once ({read:,} bytes read from clients)",
            file=sys.stderr,
        )
    else:
        print(f"stopped: {read:,} bytes read from clients, every reply sent", file=sys.stderr)
    return 0


def run_client(args) -> int:
    """``client``: the terminal client (see :mod:`nbio_helpers.cli.terminal`)."""
    return terminal_client((args.host, args.port), timeout=args.timeout)


def run_load_command(args) -> int:
    """``load``: :func:`~nbio_helpers.run_load`; exit 0 only if every echo came back right."""
    if args.clients * args.size * 3 > MAX_LOAD_MEMORY:
        args.usage_error(
            f"--clients {args.clients:,} x --size {args.size:,} would hold "
            f"{args.clients * args.size * 3 / 2**20:,.0f} MiB at once (at most "
            f"{MAX_LOAD_MEMORY / 2**20:,.0f}): lower one of them"
        )
    if args.clients * args.messages > MAX_LOAD_MESSAGES:
        args.usage_error(
            f"--clients x --messages is {args.clients * args.messages:,} "
            f"messages; at most {MAX_LOAD_MESSAGES:,}"
        )
    limit = raise_fd_limit(args.clients + 50)
    if limit is not None and limit < args.clients + 50:
        args.usage_error(
            f"--clients {args.clients:,} needs about {args.clients + 50:,} open "
            f"descriptors; this process may have {limit:,}"
        )
    address = (args.host, args.port)
    result = run_load(
        address, clients=args.clients, messages=args.messages, size=args.size, timeout=args.timeout
    )
    problem = _no_client_connected(result, address)
    summary = result.summary()
    if args.json:
        # NaN (no latency measured) is not JSON: write null instead.
        print(
            json.dumps(
                {
                    k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in summary.items()
                }
            )
        )
    elif problem is not None:
        print(f"nbio load: {problem}", file=sys.stderr)
    else:
        verdict = "ok" if result.ok else "FAILED"
        print(
            f"{result.clients} clients x {result.messages} messages x {result.size} B "
            f"-> {format_address(address)}: {verdict}"
        )
        print(f"  completed      {result.completed} of {result.clients * result.messages}")
        print(f"  elapsed        {result.elapsed:.3f} s")
        print(f"  throughput     {result.messages_per_second:,.0f} messages/s")
        print(f"  median latency {result.median_latency * 1e3:.3f} ms")
        slow = result.tail_latency  # p99, p90 or max: whichever the echoes can support
        print(f"  {slow.name} latency    {slow.value * 1e3:.3f} ms")
        for error in result.errors[:10]:
            print(f"  error: {error}")
        if len(result.errors) > 10:
            print(f"  ... and {len(result.errors) - 10} more errors")
    return 0 if result.ok else 1


def _no_client_connected(result: LoadResult, address) -> str | None:
    """One sentence when every client failed the same way, before any echo: "connection
    refused (is the server running?)" beats a screen of ECONNREFUSED lines."""
    reasons = {re.sub(r"^client \d+: (connect failed: )?", "", error) for error in result.errors}
    if result.completed or len(reasons) != 1:
        return None
    reason = re.sub(r"^\[Errno -?\d+\] ", "", reasons.pop())
    if "ECONNREFUSED" in reason or "Connection refused" in reason:
        reason = connection_problem(ConnectionRefusedError())
    return f"cannot connect to {format_address(address)}: {reason}"


# ---------------------------------------------------------------------------- helpers
def add_address_arguments(parser: argparse.ArgumentParser, serving: bool = False) -> None:
    """Add ``--host`` and ``--port`` to ``parser``: where to listen (``serving=True``, port 0
    allowed) or the server to connect to; both checked as they are parsed."""
    if serving:
        host_help = (
            f"address to listen on (default {DEFAULT_HOST}; an address that is not "
            "loopback is reachable from the network)"
        )
        port_help = f"TCP port (default {DEFAULT_PORT}; 0 = any free port)"
    else:
        host_help = f"the server's address (default {DEFAULT_HOST})"
        port_help = f"the server's TCP port (default {DEFAULT_PORT})"
    parser.add_argument("--host", type=host, default=DEFAULT_HOST, help=host_help)
    parser.add_argument(
        "--port", type=PORT if serving else SERVER_PORT, default=DEFAULT_PORT, help=port_help
    )


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr, flush=True)


def _stop(server, grace: float = 0.0) -> Exception | None:
    """Stop ``server``; return the exception that killed its loop, if any."""
    try:
        server.stop(grace=grace)
    except Exception as exc:
        return exc
    return None


STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)
)


@contextlib.contextmanager
def stop_signals():
    """While inside, SIGINT (Ctrl-C) and SIGTERM ask for a stop: the first one sets the
    yielded event, each later one raises KeyboardInterrupt in the main thread (stop at once).
    The previous handlers are put back on the way out."""
    requested = threading.Event()

    def on_signal(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        yield requested
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ignore_stop_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on: a stop at once must not be interrupted."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_LOAD_CLIENTS",
    "MAX_LOAD_MEMORY",
    "MAX_LOAD_MESSAGES",
    "MAX_MESSAGE",
    "OPTIONAL_COMMANDS",
    "STOP_SIGNALS",
    "add_address_arguments",
    "build_parser",
    "ignore_stop_signals",
    "main",
    "run_client",
    "run_load_command",
    "run_serve",
    "stop_signals",
]
