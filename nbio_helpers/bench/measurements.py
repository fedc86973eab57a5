"""The benchmark's measurements, one server (or none) at a time, the clients in the load process.

* :func:`loopback_ceiling` — bytes per second through one loopback connection: no server can
  echo faster than this machine moves bytes;
* :func:`idle_cost_entry` — a server's CPU share with silent clients connected
  (:func:`nbio_helpers.measure.idle_cost`, as the report's entry);
* :func:`throughput_entry` — echo throughput under many concurrent clients, and CPU per
  message, as the report's entry;
* :func:`max_connections` — how many concurrent connections a model holds, every echo checked;
* :func:`select_refusal` — the ``select`` model refusing descriptors beyond FD_SETSIZE.

Each takes the :class:`~nbio_helpers.measure.ClientProcess` that makes the load, and returns
plain data. Idle CPU is :func:`nbio_helpers.measure.idle_cost`, the notebooks' measurement.
"""

from __future__ import annotations

import socket
import sys
import time

from nbio_helpers.bench.load import BULK_BUFFER
from nbio_helpers.bench.servers import SERVERS
from nbio_helpers.limits import fd_limit, raise_fd_limit
from nbio_helpers.measure import idle_cost
from nbio_helpers.measure.echo import EchoLoad, measure_load
from nbio_helpers.measure.process import ClientProcess
from nbio_helpers.models import FD_SETSIZE
from nbio_helpers.server import Server


def loopback_ceiling(load: ClientProcess, seconds: float) -> dict:
    """Bytes per second through one loopback connection (load process -> this process)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BULK_BUFFER)
        listener.settimeout(10)
        load.send("bulk_send", host="127.0.0.1", port=listener.getsockname()[1], seconds=seconds)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            buf = bytearray(1024 * 1024)
            received, first = 0, None
            while n := conn.recv_into(buf):
                if first is None:
                    first = time.perf_counter()
                received += n
            elapsed = time.perf_counter() - first if first is not None else 0.0
    reply = load.reply(timeout=seconds + 20)
    return {
        "bytes_per_second": received / elapsed if elapsed else 0.0,
        "bytes": received,
        "seconds": elapsed,
        "buffer": BULK_BUFFER,
        "errors": [reply["error"]] if "error" in reply else [],
    }


def idle_cost_entry(
    server: Server, load: ClientProcess, clients: int, settle: float, seconds: float
) -> dict:
    """CPU share of the server's threads while ``clients`` silent clients stay connected.

    ``settle`` is the longest wait for the server to accept them (a server that records no
    accepts, such as the plain peers, is given that long).
    """
    cost = idle_cost(server, clients, seconds, process=load, settle=settle)
    return {
        "cpu_share": cost.cpu,
        "clients": cost.opened,
        "accepted": cost.clients,
        "rounds_per_second": cost.rounds_per_second,
        "errors": list(cost.errors),
    }


def throughput_entry(server: Server, load: ClientProcess, echo: EchoLoad) -> dict:
    """The load process's echo load ``echo`` against ``server``
    (:func:`nbio_helpers.measure.echo.measure_load`): its result, plus the server's CPU
    time per echoed message (``cpu_us_per_message``), which, unlike throughput, hardly
    depends on what else the machine is doing.
    """
    run = measure_load(server, echo, process=load, slack=50)
    result = run.reply
    result["cpu_us_per_message"] = (
        run.cpu_seconds / result["all_messages"] * 1e6 if result.get("all_messages") else None
    )
    return result


def held_echoes(
    server: Server, load: ClientProcess, count: int, timeout: float = 120, **options
) -> dict:
    """``count`` concurrent connections to ``server``, each echoing its own message at the
    same time, then closed (see :func:`.load.hold` for ``options`` and the result)."""
    with load.held(server.address, count, timeout=timeout, check=True, **options) as result:
        return result


def max_connections(load: ClientProcess, model: str, count: int) -> dict:
    """Open ``count`` concurrent connections to a fresh server of ``model``; check every echo."""
    limit_before = fd_limit()
    limit = raise_fd_limit(count + 200)
    with SERVERS[model][0]() as server:
        result = held_echoes(server, load, count)
    result.update(model=model, fd_limit_before=limit_before, fd_limit=limit)
    return result


def select_refusal(load: ClientProcess, beyond: int) -> dict:
    """Connect ``FD_SETSIZE + beyond`` clients to the ``select`` model: those whose descriptor
    would pass FD_SETSIZE are refused (closed at once); the others keep being served."""
    if sys.platform == "win32":
        return {"skipped": "on Windows select() limits the number of sockets (512), not fds"}
    wanted = FD_SETSIZE + beyond
    limit = raise_fd_limit(wanted + 200)
    if limit is not None and limit < wanted + 100:
        return {"skipped": f"the descriptor limit ({limit}) is too low to pass FD_SETSIZE"}
    result = max_connections(load, "select", wanted)
    result["fd_setsize"] = FD_SETSIZE
    return result


__all__ = [
    "held_echoes",
    "idle_cost_entry",
    "loopback_ceiling",
    "max_connections",
    "select_refusal",
    "throughput_entry",
]
