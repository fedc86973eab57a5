"""What the client process does: timed echoes, many echo clients, idle connections, bulk.

These functions run in the benchmark's *load process* (see :mod:`.worker`), never next to the
servers they measure; they return plain numbers (JSON-able). They also work in-process, for
tests::

    sequential_echo("127.0.0.1", port, requests=20, spacing=(0, 0.001))   # latencies
    echo_load("127.0.0.1", port, clients=5, size=3000, warmup=0.05, duration=0.2)
    held = []
    hold(held, "127.0.0.1", port, count=20)     # {'opened': 20, 'echoed_ok': 20, ...}

Every echo is checked byte for byte against what was sent.
"""

from __future__ import annotations

import random
import selectors
import socket
import statistics
import time

from nbio_helpers.connection import echo_upper
from nbio_helpers.limits import raise_fd_limit
from nbio_helpers.measure.stats import tail
from nbio_helpers.nonblocking import attempt

BULK_BUFFER = 4 * 1024 * 1024
"""Socket buffer size of the loopback ceiling's single connection."""


class _Client:
    """One echo client of :func:`echo_load`: send a message, receive its echo, repeat."""

    __slots__ = ("buf", "done", "got", "sent", "sock", "started", "view")

    def __init__(self, sock: socket.socket, size: int):
        self.sock = sock
        self.sent = 0
        self.got = 0
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.started = 0.0
        self.done = 0


def echo_load(
    host: str,
    port: int,
    clients: int,
    size: int,
    warmup: float,
    duration: float,
    connect_timeout: float = 10.0,
    keep_latencies: bool = False,
) -> dict:
    """Run ``clients`` echo clients for ``warmup + duration`` seconds; count only the last
    ``duration``. Every echo is checked byte for byte. Returns plain numbers (JSON-able):
    ``messages_per_second``, ``median_latency_s``, ``tail_latency_s`` with its
    ``tail_name`` (``p99``, ``p90`` or ``max``: see :mod:`nbio_helpers.measure.stats`),
    ``errors``...
    """
    message = (b"echo me, nbio! " * (size // 15 + 1))[:size]
    expected = echo_upper(message)
    out = memoryview(message)
    errors: list[str] = []
    latencies: list[float] = []
    conns: list[_Client] = []
    total = 0  # messages echoed, warm-up included
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
                # select() is the wait; a call that would block anyway (readiness is a hint)
                # gives None and is tried again at the next report (nbio_helpers.nonblocking).
                try:
                    if mask & write and (sent := attempt(c.sock.send, out[c.sent :])):
                        c.sent += sent
                        if c.sent == size:
                            sel.modify(c.sock, read, c)
                    if (
                        mask & read
                        and (n := attempt(c.sock.recv_into, c.view[c.got :])) is not None
                    ):
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
                            c.started, c.got = now, 0
                            # The next message, tried at once: there is usually room.
                            c.sent = attempt(c.sock.send, out) or 0
                            if c.sent < size:
                                sel.modify(c.sock, read | write, c)
                except (OSError, ValueError) as exc:
                    if len(errors) < 10:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    sel.unregister(c.sock)
        elapsed = time.perf_counter() - measure_from
    finally:
        sel.close()
        for c in conns:
            c.sock.close()
    done = len(latencies)
    slowest = tail(latencies)
    return {
        "clients": clients,
        "size": size,
        "seconds": elapsed,
        "messages": done,
        "all_messages": total,
        "messages_per_second": done / elapsed if elapsed > 0 else 0.0,
        "bytes_per_second": done * size / elapsed if elapsed > 0 else 0.0,
        "clients_served": sum(1 for c in conns if c.done),
        "median_latency_s": statistics.median(latencies) if latencies else None,
        # The tail under its true name (nbio_helpers.measure.stats): p99 only with 1,000 echoes.
        "tail_latency_s": slowest.value if latencies else None,
        "tail_name": slowest.name,
        "errors": errors,
        **({"latencies_s": latencies} if keep_latencies else {}),
    }


def stratified_pauses(requests: int, spacing: tuple[float, float], rng: random.Random) -> list:
    """``requests`` pauses spread uniformly over ``spacing``: one in each of ``requests``
    equal slices, at a random point of it, in random order."""
    low, high = spacing
    pauses = [low + (high - low) * (k + rng.random()) / requests for k in range(requests)]
    rng.shuffle(pauses)
    return pauses


def sequential_echo(
    host: str,
    port: int,
    requests: int = 100,
    size: int = 32,
    spacing: tuple[float, float] = (0.0, 0.0005),
    trials: int = 1,
    seed: int = 0,
    within: float = 5.0,
    pace: str = "spin",
) -> dict:
    """Time ``requests`` echo round trips, one after another on one connection, per trial.

    Before each request the client pauses a random time from ``spacing`` (seconds),
    stratified (see :func:`stratified_pauses`). Why: a polling server that sleeps between
    rounds answers just after it wakes; a client that sent its next request at once would
    always arrive at the same point of the server's sleep. Pauses spread uniformly over the
    polling period ``P`` (choose ``spacing`` spanning at least ``(0, P)``) spread arrivals
    uniformly over the server's cycle, so the median wait is ``P / 2``; stratified, a few
    requests already give a steady median. Each trial opens its own connection, and sends one
    untimed request first (it meets the server at an unknown point of its cycle).
    ``pace="spin"`` pauses on the clock (see :func:`_spin` for why), ``"sleep"`` with
    ``time.sleep()``.

    Returns ``{"trials": [[seconds, ...], ...], "requested": requests}`` (JSON-able). No new
    request starts after ``within`` seconds (counted from the start); a trial cut short keeps
    what it measured. (``within``, not ``timeout``: that name belongs to the request.)

    Raises ``TimeoutError`` if no request at all completed in time, ``ValueError`` if an echo
    came back wrong, ``ConnectionError`` if the server closed the connection.
    """
    if requests < 1 or size < 1 or trials < 1:
        raise ValueError("requests, size and trials must be >= 1")
    if pace not in ("spin", "sleep"):
        raise ValueError(f"pace must be 'spin' or 'sleep', not {pace!r}")
    low, high = spacing
    if not 0 <= low <= high:
        raise ValueError(f"spacing must be (low, high) with 0 <= low <= high, not {spacing!r}")
    rng = random.Random(seed)
    payload = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(size))
    expected = echo_upper(payload)
    deadline = time.monotonic() + within
    results: list[list[float]] = []
    for _ in range(trials):
        if time.monotonic() >= deadline:
            break
        samples: list[float] = []
        with socket.create_connection((host, port), timeout=within) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for pause in [0.0, *stratified_pauses(requests, spacing, rng)]:
                if time.monotonic() + pause >= deadline:
                    break
                start = _spin(pause) if pace == "spin" else _sleep(pause)
                sock.sendall(payload)
                reply = _receive(sock, size, deadline)
                if reply is None:
                    break
                samples.append(time.perf_counter() - start)
                if reply != expected:
                    raise ValueError(f"echo mismatch: sent {payload!r}, got {reply!r}")
        results.append(samples[1:])
    if not any(results):
        raise TimeoutError(f"no echo from {host}:{port} within {within:g} s")
    return {"trials": results, "requested": requests}


def _spin(seconds: float) -> float:
    """Wait ``seconds`` on the clock, without a timer; return ``perf_counter()`` at the end.

    Not ``time.sleep()``: the kernel fires timers that fall due close together in one go
    (timer slack, 50 µs by default on Linux), so a client's sleep ending would wake a
    sleeping poller's timer with it, and every request would arrive just as the server wakes:
    a sleeping poller would look faster than a busy one. Spinning keeps the client's
    requests independent of the server's timer.
    """
    end = time.perf_counter() + seconds
    while (now := time.perf_counter()) < end:
        pass
    return now


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return time.perf_counter()


def _receive(sock: socket.socket, size: int, deadline: float) -> bytes | None:
    """``size`` bytes from ``sock``; None if ``deadline`` (monotonic) passes first."""
    got = bytearray()
    while len(got) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(size - len(got))
        except TimeoutError:
            return None
        if not chunk:
            raise ConnectionError(
                f"the server closed the connection after {len(got)} of {size} bytes"
            )
        got += chunk
    return bytes(got)


def hold(
    held: list,
    host: str,
    port: int,
    count: int,
    check: bool = True,
    within: float = 60.0,
    connect_timeout: float = 10.0,
    reply_within: float | None = None,
    stall: float | None = None,
) -> dict:
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
        sel.register(sock, selectors.EVENT_READ, sock)
    last_progress = time.monotonic()
    while waiting and time.monotonic() < deadline:
        if stall is not None and time.monotonic() - last_progress > stall:
            break
        for key, _ in sel.select(timeout=max(0.0, min(0.05, deadline - time.monotonic()))):
            last_progress = time.monotonic()
            sock = key.data
            expected, got = waiting[sock]
            try:
                chunk = attempt(sock.recv, 64)
            except OSError:
                chunk = b""
            if chunk is None:  # readiness is a hint: wait for the next report
                continue
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


__all__ = [
    "BULK_BUFFER",
    "bulk_send",
    "echo_load",
    "hold",
    "sequential_echo",
    "stratified_pauses",
]
