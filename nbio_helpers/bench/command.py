"""The ``bench`` command: ``python -m nbio_helpers bench [--quick] [--json PATH] ...``.

The package's command line finds :func:`configure_parser` and :func:`run` here; progress goes
to stderr, the table to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .report import format_report, json_ready
from .runner import Settings, run_bench
from .servers import SERVERS


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser`` (used by ``python -m nbio_helpers bench``)."""
    parser.description = ("Measure every server model side by side, against plain asyncio "
                          "and socketserver servers.")
    parser.add_argument("--quick", action="store_true",
                        help="a small, fast run (seconds): short windows, 300 connections")
    parser.add_argument("--clients", type=int, default=100, metavar="N",
                        help="concurrent clients for throughput and idle CPU (default 100)")
    parser.add_argument("--connections", type=int, default=None, metavar="N",
                        help="concurrent connections to hold on selectors "
                             "(default 5000; quick 300)")
    parser.add_argument("--seconds", type=float, default=None, metavar="S",
                        help="measured seconds per throughput run (default 1.2; quick 0.3)")
    parser.add_argument("--rounds", type=int, default=None, metavar="R",
                        help="throughput rounds, best kept (default 4; quick 1)")
    parser.add_argument("--servers", default=None, metavar="A,B",
                        help=f"only these servers (default all: {','.join(SERVERS)})")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the results as JSON")


def run(args) -> int:
    """Run the benchmark as configured by :func:`configure_parser`; print the table."""
    servers = None
    if args.servers:
        servers = [s.strip() for s in args.servers.split(",") if s.strip()]
        unknown = [s for s in servers if s not in SERVERS]
        if unknown:
            print(f"bench: unknown server(s) {', '.join(unknown)}; "
                  f"choose from {', '.join(SERVERS)}", file=sys.stderr)
            return 2
    if args.clients < 1 or (args.rounds is not None and args.rounds < 1):
        print("bench: --clients and --rounds must be at least 1", file=sys.stderr)
        return 2
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        print(f"bench: cannot write {args.json}: no such folder", file=sys.stderr)
        return 2   # said now, not after minutes of measuring
    settings = Settings(quick=args.quick, clients=args.clients, connections=args.connections,
                        seconds=args.seconds, rounds=args.rounds, servers=servers)
    try:
        results = run_bench(settings, progress=_progress)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
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
    parser = argparse.ArgumentParser(prog="python -m nbio_helpers bench")
    configure_parser(parser)
    return run(parser.parse_args(argv))
