"""Argument types of the command line: each refuses, with one clear sentence, what cannot work.

An argparse ``type=`` function that raises ``argparse.ArgumentTypeError`` makes the command
print its usage line and that sentence, and exit 2, before any work is done::

    parser.add_argument("--timeout", type=seconds(above=0, most=3600), default=5.0)
    parser.add_argument("--clients", type=whole_number(1, 1000, "--clients"), default=100)
    whole_number_option(parser, "--clients", most=1000, default=100)  # the same, shorter
    parser.add_argument("--host", type=host, default="127.0.0.1")

Each type is an :class:`ArgumentType` that carries what it accepts (``.kind``; a range's
``.low``, ``.high``, ``.low_open``; a list's ``.names``), so that the tests can try every
option with values of the wrong kind and out of range.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ArgumentType(Generic[T]):
    """An argparse ``type=``: ``parse(text)``, plus a description of what it accepts.

    Parameters
    ----------
    parse:
        Turns the text of an option into its value; raises ``argparse.ArgumentTypeError``
        with one clear sentence for what it refuses.
    name:
        What argparse calls the type in its messages (its ``__name__``).
    kind:
        ``"int"``, ``"float"``, ``"host"`` or ``"names"``.
    low, high, low_open:
        A range's bounds (``low_open``: ``low`` itself is refused).
    names:
        The names a list of names may hold.
    """

    def __init__(
        self,
        parse: Callable[[str], T],
        name: str,
        kind: str,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        names: Sequence[str] = (),
    ):
        self._parse = parse
        self.__name__ = name
        self.__doc__ = parse.__doc__
        self.kind = kind
        self.low, self.high, self.low_open = low, high, low_open
        self.names = tuple(names)

    def __call__(self, text: str) -> T:
        return self._parse(text)

    def __repr__(self) -> str:
        return f"<argument type {self.__name__!r}>"


def whole_number(low: int, high: int, what: str = "") -> ArgumentType[int]:
    """A type accepting whole numbers from ``low`` to ``high`` (both included)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{what or 'the value'} must be {low:,} to {high:,}, not {value:,}"
            )
        return value

    return ArgumentType(parse, "whole number", "int", low=low, high=high)


def whole_number_option(
    parser: argparse.ArgumentParser, flag: str, *, most: int, least: int = 1, **options: Any
) -> None:
    """``parser.add_argument(flag, ...)`` for a whole number from ``least`` to ``most``; a value
    out of range is refused with a message that names ``flag``. ``options`` go on to
    ``add_argument`` (``default``, ``help``, ``metavar``)."""
    parser.add_argument(flag, type=whole_number(least, most, flag), **options)


def seconds(
    *, above: float | None = None, least: float | None = None, most: float
) -> ArgumentType[float]:
    """A type accepting a number of seconds: more than ``above`` (or at least ``least``),
    at most ``most``. Never NaN or infinite."""
    low = above if above is not None else least
    if low is None:
        raise TypeError("seconds() needs above= or least=")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        too_low = value <= low if above is not None else value < low
        if math.isnan(value) or too_low or value > most:
            floor = f"more than {low:g}" if above is not None else f"at least {low:g}"
            raise argparse.ArgumentTypeError(
                f"seconds must be {floor} and at most {most:g}, not {text}"
            )
        return value

    return ArgumentType(parse, "seconds", "float", low=low, high=most, low_open=above is not None)


def _host(text: str) -> str:
    """A host to listen on or connect to: a name, an IPv4 or an IPv6 address (no brackets,
    no port: the port has an option of its own)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "no host given: name one, e.g. 127.0.0.1, ::1, or 0.0.0.0 for every interface"
        )
    if text.startswith("[") or text.endswith("]"):
        raise argparse.ArgumentTypeError(
            f"write an IPv6 address without brackets: {text.strip('[]')!r}"
        )
    if any(c.isspace() for c in text) or len(text) > 253:
        raise argparse.ArgumentTypeError(f"not a host name or address: {text!r}")
    if ":" in text:
        try:
            ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not an address: {text!r} (give the port with --port)"
            ) from None
    return text


host = ArgumentType(_host, "host", "host")

PORT = whole_number(0, 65535, "a port")
"""A port to listen on: 0 means any free port."""

SERVER_PORT = whole_number(1, 65535, "the server's port")
"""A port to connect to (port 0 cannot be connected to)."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that refuses ``--option=--`` as it refuses any bad value.

    Before Python 3.13, argparse takes the ``--`` of ``--grace=--`` for its "end of options"
    marker and gives the option an empty list, without calling its ``type=`` (so that no
    check runs and the command later fails on a list where it expected a number).
    """

    def parse_known_args(self, args=None, namespace=None):
        for arg in sys.argv[1:] if args is None else args:
            option, equals, value = arg.partition("=")
            if equals and value == "--" and option.startswith("-"):
                self.error(f"argument {option}: expected a value, not '--'")
        return super().parse_known_args(args, namespace)


__all__ = [
    "PORT",
    "SERVER_PORT",
    "ArgumentParser",
    "ArgumentType",
    "host",
    "seconds",
    "whole_number",
    "whole_number_option",
]
