"""Addresses: which family a host is in, and how to write a ``(host, port)`` for a person.

One rule, used by the servers, the clients and the command line: a host with a colon in it
is an IPv6 address (no name, and no IPv4 address, contains one), anything else is IPv4 or a
name that resolves to IPv4. The package binds and connects to IPv4 hosts by default
(``127.0.0.1``); ``::1`` (or another IPv6 address) opts into IPv6.

Usage::

    socket.socket(address_family(host))      # AF_INET6 for "::1", AF_INET for "127.0.0.1"
    format_address(("::1", 8080))            # '[::1]:8080'
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["address_family", "format_address", "is_ipv6"]


def is_ipv6(host: str) -> bool:
    """Is ``host`` an IPv6 address (``::1``, ``fe80::1%eth0``)? Names and IPv4 are not."""
    return ":" in host


def address_family(host: str) -> socket.AddressFamily:
    """The socket family to use for ``host``: ``AF_INET6`` for an IPv6 address, else
    ``AF_INET``."""
    return socket.AF_INET6 if is_ipv6(host) else socket.AF_INET


def format_address(address: tuple[Any, ...]) -> str:
    """``HOST:PORT``, with brackets around an IPv6 host: ``[::1]:8080``.

    ``address`` is a ``(host, port)`` pair, or the four-tuple an IPv6 socket's
    ``getsockname()`` returns (only the first two items are used).
    """
    host, port = address[:2]
    return f"[{host}]:{port}" if is_ipv6(host) else f"{host}:{port}"
