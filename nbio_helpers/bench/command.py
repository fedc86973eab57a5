"""The ``bench`` command: ``python -m nbio_helpers bench [--quick] [--json PATH] ...``.

The package's command line finds :func:`configure_parser` and :func:`run` here; progress goes
to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from nbio_helpers.bench.report import format_report, json_ready
from nbio_helpers.bench.runner import Settings, run_bench
from nbio_helpers.bench.servers import SERVERS
from nbio_helpers.bench.worker import LoadProcessError
from nbio_helpers.cli.args import ArgumentParser, ArgumentType, seconds, whole_number_option
from nbio_helpers.limits import raise_fd_limit

MAX_CLIENTS = 1000
"""Clients at once, at most: the servers' listen backlog is 1024, and the blocking model
accepts one client at a time, so the others must all fit in the backlog."""
MAX_CONNECTIONS = 100_000


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser`` (used by ``python -m nbio_helpers bench``)."""
    parser.description = (
        "Measure every server model side by side, against plain asyncio and socketserver servers."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small, fast run (seconds): short windows, 300 connections",
    )
    whole_number_option(
        parser,
        "--clients",
        most=MAX_CLIENTS,
        default=100,
        metavar="N",
        help="concurrent clients for throughput and idle CPU (default 100; "
        f"at most {MAX_CLIENTS:,}, the servers' listen backlog)",
    )
    whole_number_option(
        parser,
        "--connections",
        most=MAX_CONNECTIONS,
        default=None,
        metavar="N",
        help="concurrent connections to hold on selectors (default 5000; quick 300)",
    )
    parser.add_argument(
        "--seconds",
        type=seconds(above=0, most=60),
        default=None,
        metavar="S",
        help="measured seconds per throughput run (default 1.2; quick 0.3)",
    )
    whole_number_option(
        parser,
        "--rounds",
        most=100,
        default=None,
        metavar="R",
        help="throughput rounds, best kept (default 4; quick 1)",
    )
    parser.add_argument(
        "--servers",
        type=server_list,
        default=None,
        metavar="A,B",
        help=f"only these servers (default all: {','.join(SERVERS)})",
    )
    parser.add_argument(
        "--json", default=None, metavar="PATH", help="also write the results as JSON"
    )
    parser.set_defaults(usage_error=parser.error)


def _server_list(text: str) -> list[str]:
    """``--servers A,B``: known server names, at least one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown server(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(SERVERS)}"
        )
    return names


server_list = ArgumentType(_server_list, "server_list", "names", names=tuple(SERVERS))


def run(args) -> int:
    """Run the benchmark as configured by :func:`configure_parser`; print the table."""
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        args.usage_error(f"cannot write {args.json}: no such folder")  # now, not after minutes
    # The servers run in this process: each client takes a descriptor here (and in the load
    # process, which inherits the limit).
    limit = raise_fd_limit(args.clients * 2 + 200)
    if limit is not None and limit < args.clients * 2 + 200:
        args.usage_error(
            f"--clients {args.clients:,} needs about {args.clients * 2 + 200:,} "
            f"open descriptors; this process may have {limit:,}"
        )
    settings = Settings(
        quick=args.quick,
        clients=args.clients,
        connections=args.connections,
        seconds=args.seconds,
        rounds=args.rounds,
        servers=args.servers,
    )
    try:
        results = run_bench(settings, progress=_progress)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except LoadProcessError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print(format_report(results), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(json_ready(results), f, indent=2, allow_nan=False)
            f.write("\n")
    return 0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    """Entry point without the package CLI: ``python -m nbio_helpers.bench``."""
    parser = ArgumentParser(prog="python -m nbio_helpers bench")
    configure_parser(parser)
    return run(parser.parse_args(argv))


__all__ = ["MAX_CLIENTS", "MAX_CONNECTIONS", "configure_parser", "main", "run", "server_list"]
