"""What the load process does: many echo clients, many idle connections, one bulk sender.

These functions run in the benchmark's *load process* (see :mod:`.worker`), never next to the
servers they measure; they return plain numbers (JSON-able). They also work in-process, for
tests::

    echo_load("127.0.0.1", port, clients=5, size=3000, warmup=0.05, duration=0.2)
    held = []
    hold(held, "127.0.0.1", port, count=20)     # {'opened': 20, 'echoed_ok': 20, ...}

Every echo is checked byte for byte against what was sent.
"""
from __future__ import annotations

import selectors
import socket
import statistics
import time

from ..connection import echo_upper
from ..limits import raise_fd_limit

BULK_BUFFER = 4 * 1024 * 1024
"""Socket buffer size of the loopback ceiling's single connection."""


class _Client:
    """One echo client of :func:`echo_load`: send a message, receive its echo, repeat."""

    __slots__ = ("sock", "sent", "got", "buf", "view", "started", "done")

    def __init__(self, sock: socket.socket, size: int):
        self.sock = sock
        self.sent = 0
        self.got = 0
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.started = 0.0
        self.done = 0


def echo_load(host: str, port: int, clients: int, size: int, warmup: float, duration: float,
              connect_timeout: float = 10.0) -> dict:
    """Run ``clients`` echo clients for ``warmup + duration`` seconds; count only the last
    ``duration``. Every echo is checked byte for byte. Returns plain numbers (JSON-able)."""
    message = (b"echo me, nbio! " * (size // 15 + 1))[:size]
    expected = echo_upper(message)
    out = memoryview(message)
    errors: list[str] = []
    latencies: list[float] = []
    conns: list[_Client] = []
    total = 0   # messages echoed, warm-up included
    sel = selectors.DefaultSelector()
    read, write = selectors.EVENT_READ, selectors.EVENT_WRITE
    try:
        for _ in range(clients):
            sock = socket.create_connection((host, port), timeout=connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            conns.append(_Client(sock, size))
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + duration
        for c in conns:
            c.started = start
            sel.register(c.sock, read | write, c)
        while (now := time.perf_counter()) < end and sel.get_map():
            for key, mask in sel.select(timeout=min(0.1, end - now)):
                c = key.data
                try:
                    if mask & write:
                        c.sent += c.sock.send(out[c.sent:])
                        if c.sent == size:
                            sel.modify(c.sock, read, c)
                    if mask & read:
                        n = c.sock.recv_into(c.view[c.got:])
                        if n == 0:
                            raise ConnectionError("the server closed the connection")
                        c.got += n
                        if c.got == size:
                            now = time.perf_counter()
                            if c.buf != expected:
                                raise ValueError("the echo differs from what was sent")
                            total += 1
                            if now >= measure_from:
                                latencies.append(now - c.started)
                                c.done += 1
                            c.started, c.sent, c.got = now, 0, 0
                            c.sent = c.sock.send(out)  # the next message, at once
                            if c.sent < size:
                                sel.modify(c.sock, read | write, c)
                except (BlockingIOError, InterruptedError):
                    pass
                except (OSError, ValueError) as exc:
                    if len(errors) < 10:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    sel.unregister(c.sock)
        elapsed = time.perf_counter() - measure_from
    finally:
        sel.close()
        for c in conns:
            c.sock.close()
    latencies.sort()
    done = len(latencies)
    return {
        "clients": clients, "size": size, "seconds": elapsed, "messages": done,
        "all_messages": total,
        "messages_per_second": done / elapsed if elapsed > 0 else 0.0,
        "bytes_per_second": done * size / elapsed if elapsed > 0 else 0.0,
        "clients_served": sum(1 for c in conns if c.done),
        "median_latency_s": statistics.median(latencies) if latencies else None,
        "p99_latency_s": latencies[min(done - 1, int(0.99 * done))] if latencies else None,
        "errors": errors,
    }


def hold(held: list, host: str, port: int, count: int, check: bool = True,
         within: float = 60.0, connect_timeout: float = 10.0, reply_within: float | None = None,
         stall: float | None = None) -> dict:
    """Open ``count`` connections and keep them open (appended to ``held``) for the caller.

    Connecting stops early after ``within`` seconds or at the first connect that fails (or
    takes longer than ``connect_timeout``: the server's backlog is full). With ``check``, once
    all are open each sends its own message at the same time and the echoes are verified for
    at most ``reply_within`` seconds (default ``within``), or until none has come for ``stall``
    seconds: ``echoed_ok`` + ``refused`` (closed or reset by the server) + ``no_reply`` =
    ``opened``.
    """
    raise_fd_limit(count + 100)
    deadline = time.monotonic() + within
    errors: list[str] = []
    new: list[socket.socket] = []
    for _ in range(count):
        left = deadline - time.monotonic()
        if left <= 0:
            errors.append(f"connecting took longer than {within:g} s")
            break
        try:
            sock = socket.create_connection((host, port), timeout=min(left, connect_timeout))
        except OSError as exc:
            errors.append(f"connect #{len(new) + 1}: {type(exc).__name__}: {exc}")
            break
        new.append(sock)
    held.extend(new)
    result = {"asked": count, "opened": len(new), "errors": errors}
    if not check:
        return result
    ok = refused = 0
    deadline = time.monotonic() + (within if reply_within is None else reply_within)
    sel = selectors.DefaultSelector()
    waiting = {}
    for i, sock in enumerate(new):
        message = b"conn %06d ok" % i
        try:
            sock.settimeout(1.0)
            sock.sendall(message)
        except OSError:
            refused += 1
            continue
        sock.setblocking(False)
        waiting[sock] = [echo_upper(message), b""]
        sel.register(sock, selectors.EVENT_READ)
    last_progress = time.monotonic()
    while waiting and time.monotonic() < deadline:
        if stall is not None and time.monotonic() - last_progress > stall:
            break
        for key, _ in sel.select(timeout=max(0.0, min(0.05, deadline - time.monotonic()))):
            last_progress = time.monotonic()
            sock = key.fileobj
            expected, got = waiting[sock]
            try:
                chunk = sock.recv(64)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if chunk:
                got += chunk
                waiting[sock][1] = got
                if len(got) < len(expected):
                    continue
                if got == expected:
                    ok += 1
                else:
                    errors.append("an echo differs from what was sent")
            else:
                refused += 1
            sel.unregister(sock)
            del waiting[sock]
    sel.close()
    result.update(echoed_ok=ok, refused=refused, no_reply=len(waiting))
    return result


def bulk_send(host: str, port: int, seconds: float, buffer: int = BULK_BUFFER) -> dict:
    """Send as fast as possible on one connection for ``seconds``, then close."""
    chunk = memoryview(bytes(1024 * 1024))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
        sock.settimeout(10)
        sock.connect((host, port))
        sent, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            sock.sendall(chunk)
            sent += len(chunk)
    return {"sent": sent}
