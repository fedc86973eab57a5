"""Every running server, by name, and every client console, so that nothing is left behind.

Re-running a notebook cell that starts a server named ``"demo"`` stops the previous
``"demo"`` first; the last cell of every notebook calls :func:`stop_all` (through ``finish()``).

Clients that keep a connection open (the widgets' client consoles) are kept here too, by key,
the same way: registering a client under a key that is taken replaces the older client
(its ``replaced()`` is called), and :func:`disconnect_clients` closes every connection.
"""

from __future__ import annotations

import threading
from typing import Protocol


class RunningServer(Protocol):
    """What the registry needs of a server (every :class:`~nbio_helpers.server.Server`)."""

    name: str

    def stop(self, timeout: float = ..., *, reason: str | None = ...) -> None: ...


class KeptClient(Protocol):
    """What the registry needs of a client that keeps a connection open (a console)."""

    def replaced(self) -> None: ...

    def disconnect(self) -> None: ...


_lock = threading.Lock()
_servers: dict[str, RunningServer] = {}
_clients: dict[str, KeptClient] = {}

STOPPED_BY_STOP_ALL = "finish() or stop_all() stopped every server"


def stop_named(name: str, reason: str | None = None) -> None:
    """Stop the running server called ``name``, if any (its errors are not raised here).

    ``reason`` is what the old server says if it is used afterwards.
    """
    with _lock:
        old = _servers.get(name)
    if old is not None:
        try:
            old.stop(reason=reason or f"a new server named {name!r} replaced it")
        except Exception:  # the old server's failure must not prevent a new one
            pass


def register(server: RunningServer) -> None:
    """Remember a started server under ``server.name``, stopping any older one of that name."""
    with _lock:
        old = _servers.get(server.name)
    if old is not None and old is not server:
        stop_named(server.name)
    with _lock:
        _servers[server.name] = server


def unregister(server: RunningServer) -> None:
    """Forget a server (called by ``stop()``)."""
    with _lock:
        if _servers.get(server.name) is server:
            del _servers[server.name]


def running_servers() -> dict[str, RunningServer]:
    """A snapshot ``{name: server}`` of the servers that are running now."""
    with _lock:
        return dict(_servers)


def stop_all(timeout: float = 5.0) -> list[str]:
    """Stop every running server; return the names stopped (sorted).

    Errors that killed a server's loop are not raised here (each is kept on its
    ``.error``): the point of this call is to leave nothing running.
    """
    with _lock:
        servers = list(_servers.values())
    for server in servers:
        try:
            server.stop(timeout=timeout, reason=STOPPED_BY_STOP_ALL)
        except Exception:
            pass
    return sorted(s.name for s in servers)


# ------------------------------------------------------------------------------ clients
def register_client(key: str, client: KeptClient) -> None:
    """Keep ``client`` under ``key``; an older client under the same key is told it was
    ``replaced()`` (it closes its connection and stops sending) and forgotten."""
    with _lock:
        old = _clients.get(key)
        _clients[key] = client
    if old is not None and old is not client:
        old.replaced()


def clients() -> dict[str, KeptClient]:
    """A snapshot ``{key: client}`` of the registered clients."""
    with _lock:
        return dict(_clients)


def disconnect_clients() -> int:
    """Close the connection of every registered client (each opens a new one if used
    again); returns how many clients there are."""
    with _lock:
        everyone = list(_clients.values())
    for client in everyone:
        client.disconnect()
    return len(everyone)


__all__ = [
    "STOPPED_BY_STOP_ALL",
    "KeptClient",
    "RunningServer",
    "clients",
    "disconnect_clients",
    "register",
    "register_client",
    "running_servers",
    "stop_all",
    "stop_named",
    "unregister",
]
