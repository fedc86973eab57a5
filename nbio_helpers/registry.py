"""Every running server, by name, so that nothing is ever left behind.

Re-running a notebook cell that starts a server named ``"demo"`` stops the previous
``"demo"`` first; the last cell of every notebook calls :func:`stop_all`.
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_servers: dict[str, object] = {}


def stop_named(name: str) -> None:
    """Stop the running server called ``name``, if any (its errors are not raised here)."""
    with _lock:
        old = _servers.get(name)
    if old is not None:
        try:
            old.stop()
        except Exception:  # the old server's failure must not prevent a new one
            pass


def register(server) -> None:
    """Remember a started server under ``server.name``, stopping any older one of that name."""
    with _lock:
        old = _servers.get(server.name)
    if old is not None and old is not server:
        stop_named(server.name)
    with _lock:
        _servers[server.name] = server


def unregister(server) -> None:
    """Forget a server (called by ``stop()``)."""
    with _lock:
        if _servers.get(server.name) is server:
            del _servers[server.name]


def running_servers() -> dict[str, object]:
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
            server.stop(timeout=timeout)
        except Exception:
            pass
    return sorted(s.name for s in servers)
