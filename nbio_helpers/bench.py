"""``python -m nbio_helpers bench``: every server model side by side, against the peers.

One run measures, on this machine:

* echo throughput with 100 concurrent clients, small (64 B) and large (64 KiB) messages, for
  every model and for two references a user would pick instead: a plain asyncio streams
  server and a plain ``socketserver.ThreadingTCPServer`` (both below, written as a user
  would, without the event log);
* the loopback ceiling (one connection, bulk transfer, large buffers) and each server's
  fraction of it;
* the idle CPU share of each server with 100 connected, silent clients;
* how many concurrent connections the ``selectors`` model holds (target 5,000; the soft
  ``RLIMIT_NOFILE`` is raised where allowed), and the ``select`` model refusing descriptors
  beyond FD_SETSIZE.

The servers run in threads of this process, as in the notebooks; the clients run in a separate
*load process* (``python -c "from nbio_helpers.bench import worker_main; worker_main()"``), so
they neither compete with the server for the GIL nor share its descriptor table. The two talk
over the load process's stdin/stdout, one JSON object a line.

Usage::

    python -m nbio_helpers bench               # full run, two to three minutes
    python -m nbio_helpers bench --quick       # a few seconds; smoke test
    python -m nbio_helpers bench --clients 50 --json results.json --servers selectors,ref-asyncio
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import queue
import selectors
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time

from .connection import echo_upper
from .cpu import cpu_share
from .models import FD_SETSIZE, MODELS
from .scaling import fd_limit, raise_fd_limit
from .server import Server, shutdown_quietly

SMALL, LARGE = 64, 64 * 1024
BULK_BUFFER = 4 * 1024 * 1024


# --------------------------------------------------------------------------- the references
class AsyncioStreamsReference(Server):
    """The echo server as anyone would write it with asyncio streams: the peer to beat.

    No event log, no backpressure settings, the default event loop; only the start/stop glue
    of :class:`~nbio_helpers.server.Server` around it.
    """

    model = "ref-asyncio"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loop = None
        self._stop_event = None

    def serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self.stopping:  # stop() came before the loop existed (see on_stop)
            return
        self.listener.setblocking(False)
        server = await asyncio.start_server(_echo_stream, sock=self.listener)
        async with server:
            await self._stop_event.wait()

    def on_stop(self) -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:
                pass  # the loop has already finished


async def _echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class _EchoHandler(socketserver.BaseRequestHandler):
    def setup(self):
        self.server.nbio.cpu.enter()
        self.cid = self.server.nbio.track(self.request)   # so that stop() can unblock it

    def handle(self):
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data.upper())
        except OSError:
            pass

    def finish(self):
        self.server.nbio.close_connection(self.request, self.cid, "handler finished")
        self.server.nbio.cpu.exit()


class ThreadingTCPReference(Server):
    """The echo server as anyone would write it with ``socketserver.ThreadingTCPServer``."""

    model = "ref-socketserver"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._srv = None
        self._srv_lock = threading.Lock()

    def serve(self) -> None:
        srv = socketserver.ThreadingTCPServer(self.address, _EchoHandler, bind_and_activate=False)
        srv.socket.close()
        srv.socket = self.listener   # already bound and listening
        srv.nbio = self
        # The lock makes "stop() before serve_forever()" safe: shutdown() waits for
        # serve_forever(), so either on_stop sees no server yet, or serve_forever will run.
        with self._srv_lock:
            if self.stopping:
                return
            self._srv = srv
        srv.serve_forever(poll_interval=0.5)

    def on_stop(self) -> None:
        with self._srv_lock:
            srv = self._srv
        if srv is not None:
            srv.shutdown()
        with self._open_lock:
            connections = list(self._open)
        for sock in connections:
            shutdown_quietly(sock)   # wakes each handler blocked in recv()

    def _join_workers(self, timeout: float) -> None:
        if self._srv is not None:
            self._srv.server_close()   # joins the handler threads


# Name -> (factory, kind). Every model, in teaching order, then the references.
SERVERS = {
    "blocking": (lambda: MODELS["blocking"](record_events=False), "model"),
    "threads": (lambda: MODELS["threads"](record_events=False), "model"),
    "polling": (lambda: MODELS["polling"](record_events=False), "model"),
    "polling-1ms": (lambda: MODELS["polling"](interval=0.001, record_events=False), "model"),
    "select": (lambda: MODELS["select"](record_events=False), "model"),
    "selectors": (lambda: MODELS["selectors"](record_events=False), "model"),
    "asyncio": (lambda: MODELS["asyncio"](record_events=False), "model"),
    "ref-asyncio": (AsyncioStreamsReference, "reference"),
    "ref-socketserver": (ThreadingTCPReference, "reference"),
}
REFERENCE = "ref-asyncio"
IDLE_CPU_TARGET = 0.01
IDLE_TARGET_SERVERS = ("select", "selectors", "asyncio")


# ---------------------------------------------------------------------- the load process
def worker_main() -> None:
    """The load process: read one JSON command a line from stdin, answer one JSON line."""
    try:
        _serve_commands()
    except KeyboardInterrupt:
        pass  # Ctrl-C reaches the whole process group: the bench process reports it


def _serve_commands() -> None:
    held: list[socket.socket] = []
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        cmd, args = request["cmd"], request.get("args", {})
        try:
            if cmd == "quit":
                break
            elif cmd == "echo_load":
                reply = echo_load(**args)
            elif cmd == "hold":
                reply = hold(held, **args)
            elif cmd == "release":
                reply = {"released": len(held)}
                for sock in held:
                    sock.close()
                held.clear()
            elif cmd == "bulk_send":
                reply = bulk_send(**args)
            elif cmd == "ping":
                reply = {"pong": True, "fd_limit": fd_limit()}
            else:
                reply = {"error": f"unknown command {cmd!r}"}
        except Exception as exc:  # report, never die: the bench process decides
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    for sock in held:
        sock.close()


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


class LoadProcess:
    """The bench's handle on the load process: ``call("echo_load", ...)`` -> dict."""

    def __init__(self):
        code = "from nbio_helpers.bench import worker_main; worker_main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self._replies: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="bench-load-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._replies.put(json.loads(line))
        self._replies.put({"error": "the load process ended"})

    def send(self, cmd: str, **args) -> None:
        self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float) -> dict:
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the load process did not answer within {timeout} s") from None

    def call(self, cmd: str, timeout: float = 60.0, **args) -> dict:
        self.send(cmd, **args)
        return self.reply(timeout)

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        self.proc.stdin.close()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- measurements
def loopback_ceiling(load: LoadProcess, seconds: float) -> dict:
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
    return {"bytes_per_second": received / elapsed if elapsed else 0.0, "bytes": received,
            "seconds": elapsed, "buffer": BULK_BUFFER,
            "errors": [reply["error"]] if "error" in reply else []}


def idle_cpu(server: Server, load: LoadProcess, clients: int, settle: float,
             seconds: float) -> dict:
    """CPU share of the server's threads while ``clients`` silent clients stay connected."""
    host, port = server.address
    held = load.call("hold", host=host, port=port, count=clients, check=False)
    try:
        # Let the server accept them (and the threads model start its threads) first.
        time.sleep(settle)
        share = cpu_share(server.cpu, seconds)
    finally:
        load.call("release")
    return {"cpu_share": share, "clients": held.get("opened", 0), "errors": held.get("errors", [])}


def throughput(server: Server, load: LoadProcess, clients: int, size: int, warmup: float,
               seconds: float) -> dict:
    """Echo throughput of ``clients`` clients sending ``size``-byte messages (load process).

    Also the server's CPU time per echoed message (``cpu_us_per_message``): unlike
    throughput, it hardly depends on what else the machine is doing.
    """
    host, port = server.address
    cpu0 = server.cpu.total()
    result = load.call("echo_load", timeout=warmup + seconds + 60, host=host, port=port,
                       clients=clients, size=size, warmup=warmup, duration=seconds)
    cpu = server.cpu.total() - cpu0
    result["cpu_us_per_message"] = cpu / result["all_messages"] * 1e6 \
        if result.get("all_messages") else None
    return result


def max_connections(load: LoadProcess, model: str, count: int) -> dict:
    """Open ``count`` concurrent connections to a fresh server of ``model``; check every echo."""
    limit_before = fd_limit()
    limit = raise_fd_limit(count + 200)
    server = SERVERS[model][0]()
    server.start()
    try:
        host, port = server.address
        result = load.call("hold", timeout=120, host=host, port=port, count=count, check=True)
        load.call("release")
    finally:
        server.stop()
    result.update(model=model, fd_limit_before=limit_before, fd_limit=limit)
    return result


def select_refusal(load: LoadProcess, beyond: int) -> dict:
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


# ------------------------------------------------------------------------------ the run
class Settings:
    """How long and how big each measurement is (``quick`` shrinks everything)."""

    def __init__(self, quick: bool = False, clients: int = 100, connections: int | None = None,
                 seconds: float | None = None, rounds: int | None = None, servers=None):
        self.quick = quick
        self.rounds = rounds if rounds is not None else (1 if quick else 4)
        self.clients = clients
        self.warmup = 0.1 if quick else 0.3
        self.seconds = seconds if seconds is not None else (0.3 if quick else 1.2)
        self.idle_settle = 0.15 if quick else 0.5
        self.idle_seconds = 0.25 if quick else 1.0
        self.ceiling_seconds = 0.3 if quick else 1.0
        self.connections = connections if connections is not None else (300 if quick else 5000)
        self.select_beyond = 50 if quick else 100
        self.servers = list(servers) if servers else list(SERVERS)

    def as_dict(self) -> dict:
        return dict(vars(self))


def run_bench(settings: Settings, progress=lambda text: None) -> dict:
    """Run every measurement; return the results as plain data (see :func:`format_report`).

    Throughput is measured in ``settings.rounds`` rounds, the servers in turn (the order
    reversed every other round, so none is always first or last); each server keeps its best
    round: on a shared machine, the best run is the one least disturbed by others.
    """
    started = time.perf_counter()
    results = {"meta": machine_info(), "settings": settings.as_dict(), "servers": {},
               "connections": {}}
    names = settings.servers
    steps = (1 + len(names) * (1 + 2 * settings.rounds)
             + ("selectors" in names) + ("select" in names))
    step = 0

    def note(text):
        nonlocal step
        step += 1
        progress(f"[{step:2d}/{steps}] {time.perf_counter() - started:5.1f} s  {text}")

    with LoadProcess() as load:
        ping = load.call("ping", timeout=30)
        if "error" in ping:
            raise RuntimeError(f"the load process failed to start: {ping['error']}")
        note("loopback ceiling (1 connection, bulk)")
        results["ceiling"] = loopback_ceiling(load, settings.ceiling_seconds)
        for name in names:
            results["servers"][name] = {"kind": SERVERS[name][1],
                                        "rounds": {"small": [], "large": []}}
        for round_ in range(settings.rounds):
            for name in (names if round_ % 2 == 0 else names[::-1]):
                entry = results["servers"][name]
                server = SERVERS[name][0]()
                server.start()
                try:
                    if round_ == 0:
                        note(f"{name}: idle CPU, {settings.clients} silent clients")
                        entry["idle"] = idle_cpu(server, load, settings.clients,
                                                 settings.idle_settle, settings.idle_seconds)
                    for label, size in (("small", SMALL), ("large", LARGE)):
                        note(f"{name}: echo {_size(size)} x {settings.clients} clients"
                             + (f", round {round_ + 1}" if settings.rounds > 1 else ""))
                        entry["rounds"][label].append(throughput(
                            server, load, settings.clients, size, settings.warmup,
                            settings.seconds))
                finally:
                    server.stop()
        for entry in results["servers"].values():
            for label, runs in entry["rounds"].items():
                best = dict(max(runs, key=lambda r: r["messages_per_second"]))
                best["errors"] = [e for r in runs for e in r["errors"]][:10]
                costs = [r["cpu_us_per_message"] for r in runs if r.get("cpu_us_per_message")]
                best["cpu_us_per_message"] = min(costs, default=None)   # the least disturbed
                entry[label] = best
        if "selectors" in names:
            note(f"selectors: {settings.connections:,} concurrent connections")
            results["connections"]["selectors"] = max_connections(load, "selectors",
                                                                  settings.connections)
        if "select" in names:
            note(f"select: FD_SETSIZE + {settings.select_beyond} connections")
            results["connections"]["select"] = select_refusal(load, settings.select_beyond)
    results["targets"] = evaluate_targets(results)
    results["meta"]["seconds"] = time.perf_counter() - started
    progress(f"done in {results['meta']['seconds']:.1f} s")
    return results


def machine_info() -> dict:
    """What the numbers depend on: OS, CPUs, Python, and how busy the machine was."""
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "selector": selectors.DefaultSelector.__name__, "fd_limit": fd_limit()}
    if hasattr(os, "getloadavg"):
        info["load_average"] = list(os.getloadavg())
    return info


def _ratio(value, reference):
    return value / reference if value is not None and reference else None


def evaluate_targets(results: dict) -> list[dict]:
    """The issue's targets, each with the measured value and whether it was met."""
    targets = []
    servers = results["servers"]
    ref = servers.get(REFERENCE)
    sel = servers.get("selectors")
    if ref and sel:
        for label, size in (("small", SMALL), ("large", LARGE)):
            ratio = _ratio(sel[label]["messages_per_second"], ref[label]["messages_per_second"])
            targets.append({"target": f"selectors >= 1.0x {REFERENCE} throughput, {_size(size)}",
                            "value": ratio, "shown": f"{ratio:.2f}x" if ratio else "n/a",
                            "met": bool(ratio and ratio >= 1.0 and not sel[label]["errors"])})
    for name in IDLE_TARGET_SERVERS:
        if name in servers:
            share = servers[name]["idle"]["cpu_share"]
            targets.append({"target": f"{name} idle CPU <= {IDLE_CPU_TARGET:.0%} of a core",
                            "value": share, "shown": f"{share:.2%}",
                            "met": share == share and share <= IDLE_CPU_TARGET})
    conns = results["connections"].get("selectors")
    if conns:
        asked = conns["asked"]
        ok = conns.get("echoed_ok", 0)
        targets.append({"target": f"selectors holds {asked:,} connections, every echo correct",
                        "value": ok, "shown": f"{ok:,} of {asked:,}",
                        "met": ok == asked and not conns["errors"]})
    return targets


def _size(nbytes: int) -> str:
    return f"{nbytes // 1024} KiB" if nbytes >= 1024 else f"{nbytes} B"


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None or value != value else format(value, spec)


def format_report(results: dict) -> str:
    """The benchmark table, as printed by ``python -m nbio_helpers bench``."""
    meta, st = results["meta"], results["settings"]
    ceiling = results["ceiling"]["bytes_per_second"]
    load = meta.get("load_average")
    lines = [
        f"nbio bench{' (quick run)' if st['quick'] else ''}: "
        "upper-case echo servers, side by side",
        f"machine: {meta['platform']}, {meta['cpus']} CPUs, Python {meta['python']}, "
        f"{meta['selector']}" + (f", load average {load[0]:.2f} at the start" if load else ""),
        f"load: {st['clients']} concurrent clients in a separate process; each run "
        f"{st['warmup']:g} s warm-up + {st['seconds']:g} s measured, best of {st['rounds']}",
        f"loopback ceiling (1 connection, bulk transfer, {BULK_BUFFER // 2**20} MiB buffers): "
        f"{ceiling / 1e6:,.0f} MB/s",
        "",
    ]
    ref = results["servers"].get(REFERENCE)
    header = (f"{'server':<17}{'64 B msg/s':>11}{'x ref':>7}{'us/msg':>7}{'p50 ms':>7}"
              f"{'p99 ms':>7}{'64 KiB MB/s':>12}{'x ref':>7}{'us/msg':>7}{'of ceiling':>11}"
              f"{'served':>8}{'idle CPU':>9}")
    lines += [header, "-" * len(header)]
    for name, entry in results["servers"].items():
        small, large = entry["small"], entry["large"]
        ratio_s = _ratio(small["messages_per_second"], ref and ref["small"]["messages_per_second"])
        ratio_l = _ratio(large["bytes_per_second"], ref and ref["large"]["bytes_per_second"])
        flags = "" if not (small["errors"] or large["errors"]) else "  (errors, see JSON)"
        ms = lambda v: None if v is None else v * 1e3  # noqa: E731
        lines.append(
            f"{name:<17}{_fmt(small['messages_per_second'], ',.0f'):>11}"
            f"{_fmt(ratio_s, '.2f') + 'x' if ratio_s else '-':>7}"
            f"{_fmt(small.get('cpu_us_per_message'), '.1f'):>7}"
            f"{_fmt(ms(small['median_latency_s']), '.2f'):>7}"
            f"{_fmt(ms(small['p99_latency_s']), '.1f'):>7}"
            f"{_fmt(large['bytes_per_second'] / 1e6, ',.1f'):>12}"
            f"{_fmt(ratio_l, '.2f') + 'x' if ratio_l else '-':>7}"
            f"{_fmt(large.get('cpu_us_per_message'), '.1f'):>7}"
            f"{_fmt(_ratio(large['bytes_per_second'], ceiling), '.1%'):>11}"
            f"{small['clients_served']:>4}/{small['clients']:<3}"
            f"{_fmt(entry['idle']['cpu_share'], '.1%'):>9}{flags}")
    lines += ["", "x ref: throughput relative to ref-asyncio (asyncio streams written plainly);",
              "us/msg: the server's CPU time per echoed message, lowest of the rounds (steadier "
              "than throughput on a busy machine);",
              "of ceiling: echoed payload bytes/s (one way) over the loopback ceiling (one way);",
              "served: clients that got at least one echo (64 B run);",
              f"idle CPU: share of one core with {st['clients']} connected silent clients.", ""]
    conns = results["connections"]
    if "selectors" in conns:
        c = conns["selectors"]
        lines.append(f"selectors: {c['opened']:,} of {c['asked']:,} connections opened and held, "
                     f"{c.get('echoed_ok', 0):,} echoes correct (all at once); "
                     f"RLIMIT_NOFILE soft {c['fd_limit_before']} -> {c['fd_limit']}")
    if "select" in conns:
        c = conns["select"]
        if "skipped" in c:
            lines.append(f"select: FD_SETSIZE probe skipped: {c['skipped']}")
        else:
            lines.append(f"select: {c['opened']:,} connections opened; "
                         f"{c.get('echoed_ok', 0):,} served, {c.get('refused', 0):,} refused "
                         f"(descriptor >= FD_SETSIZE = {c['fd_setsize']})")
    lines += ["", "targets:"]
    for t in results["targets"]:
        lines.append(f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['shown']}")
    return "\n".join(lines)


# ------------------------------------------------------- in a notebook: small and fast
NOTEBOOK_MODELS = (
    ("blocking", "blocking", {}),
    ("threads", "threads", {}),
    ("polling (busy)", "polling", {}),
    ("polling (10 ms sleep)", "polling", {"interval": 0.01}),
    ("select", "select", {}),
    ("selectors", "selectors", {}),
    ("asyncio", "asyncio", {}),
)
"""``(label, model, options)`` of every model, as notebook 05 compares them."""


@dataclasses.dataclass
class ModelFigures:
    """One model's row in :func:`compare`. CPU in cores (1.0 = one core busy), times in s."""

    label: str
    model: str
    idle_cpu: float          # silent clients connected
    loaded_cpu: float        # during the concurrent load
    median_latency: float    # one client, sequential requests
    p99_latency: float
    throughput: float        # messages per second under the concurrent load
    load_ok: bool            # every echo of the load came back intact
    max_connections: int     # connections echoed at the same time...
    tried: int               # ...of this many opened

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def compare(models=NOTEBOOK_MODELS, *, idle_clients: int = 20, idle_seconds: float = 0.15,
            requests: int = 20, size: int = 64, load_clients: int = 20, load_seconds: float = 0.15,
            connections: int = 1100, timeout: float = 5.0) -> list[ModelFigures]:
    """Every model under the same load, one after another: the benchmark, notebook-sized.

    For each model: idle CPU with ``idle_clients`` silent clients; median and p99 latency of
    ``requests`` sequential requests from this process
    (:func:`nbio_helpers.measure.latency_stats`);
    throughput and CPU while ``load_clients`` clients echo ``size``-byte messages for
    ``load_seconds``; how many of ``connections`` concurrent connections get their echo at the
    same time. The load and the connections come from a separate load process (as in the
    benchmark), so they do not compete with the server for this process's GIL.
    A few seconds in all.
    """
    from . import measure

    raise_fd_limit(connections + 300)
    rows = []
    with LoadProcess() as load:
        for label, model, options in models:
            # A backlog for every client at once: a slow accept() must not fail a connect().
            with MODELS[model](name=f"compare-{model}", record_events=False,
                               backlog=connections + 100, **options) as server:
                host, port = server.address
                with measure.idle_clients(server, idle_clients, timeout=0.2):
                    idle = cpu_share(server.cpu, idle_seconds)
                spacing = (0.0, max(0.002, options.get("interval", 0.0)))
                lat = measure.latency_stats(server.address, requests, size, timeout, spacing)
                cpu0, t0 = server.cpu.total(), time.perf_counter()
                run = load.call("echo_load", timeout=load_seconds + 30, host=host, port=port,
                                clients=load_clients, size=size, warmup=0.0, duration=load_seconds)
                loaded = (server.cpu.total() - cpu0) / (time.perf_counter() - t0)
                probe = load.call("hold", timeout=timeout + 30, host=host, port=port,
                                  count=connections, within=timeout, connect_timeout=1.0,
                                  reply_within=timeout, stall=0.5)
                load.call("release")
            for reply in (run, probe):
                if "error" in reply:
                    raise RuntimeError(f"the load process failed: {reply['error']}")
            rows.append(ModelFigures(label, model, idle, loaded, lat.median, lat.p99,
                                     run["messages_per_second"], not run["errors"],
                                     probe["echoed_ok"], probe["opened"]))
    return rows


def comparison_table(rows: list[ModelFigures]) -> str:
    """:func:`compare`'s rows as a fixed-width text table."""
    header = (f"{'model':<22}{'idle CPU':>9}{'loaded CPU':>11}{'median':>10}{'p99':>10}"
              f"{'msg/s':>9}{'connections':>13}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.label:<22}{_fmt(r.idle_cpu, '.0%'):>9}{_fmt(r.loaded_cpu, '.0%'):>11}"
                     f"{_fmt(r.median_latency * 1e3, '.2f') + ' ms':>10}"
                     f"{_fmt(r.p99_latency * 1e3, '.2f') + ' ms':>10}"
                     f"{r.throughput:>9,.0f}{f'{r.max_connections}/{r.tried}':>13}")
    return "\n".join(lines)


def plot_comparison(rows: list[ModelFigures], title: str | None = None):
    """Four panels: CPU (idle and loaded), latency (median bar, p99 mark), throughput, and
    connections served at once. Returns the Figure."""
    import matplotlib.pyplot as plt

    labels = [r.label for r in rows]
    y = list(range(len(rows)))
    fig, (ax_cpu, ax_lat, ax_tput, ax_conn) = plt.subplots(
        1, 4, figsize=(12, 0.45 * len(rows) + 2.2), sharey=True)
    ax_cpu.barh([i - 0.2 for i in y], [r.idle_cpu for r in rows], height=0.4,
                color="tab:red", label="idle")
    ax_cpu.barh([i + 0.2 for i in y], [r.loaded_cpu for r in rows], height=0.4,
                color="tab:orange", label="loaded")
    ax_cpu.set_xlabel("CPU (cores)")
    ax_cpu.set_yticks(y, labels)
    ax_cpu.invert_yaxis()
    ax_cpu.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    ax_lat.barh(y, [r.median_latency * 1e3 for r in rows], color="tab:blue", label="median")
    ax_lat.plot([r.p99_latency * 1e3 for r in rows], y, "k|", markersize=12, label="p99")
    ax_lat.set_xscale("log")
    ax_lat.set_xlabel("latency (ms, log)")
    ax_lat.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    ax_tput.barh(y, [r.throughput for r in rows], color="tab:green")
    ax_tput.set_xlabel("throughput (messages/s)")
    ax_conn.barh(y, [r.max_connections for r in rows], color="tab:purple")
    ax_conn.axvline(rows[0].tried if rows else 0, color="grey", linestyle=":", linewidth=1)
    ax_conn.set_xlabel(f"connections served at once (of {rows[0].tried if rows else 0})")
    for ax in (ax_cpu, ax_lat, ax_tput, ax_conn):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title or "Every model under the same load")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ the CLI
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
            json.dump(_no_nan(results), f, indent=2, allow_nan=False)
            f.write("\n")
    return 0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _no_nan(value):
    """``value`` with every NaN replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def main(argv=None) -> int:
    """Entry point without the package CLI: ``python -m nbio_helpers.bench``."""
    parser = argparse.ArgumentParser(prog="python -m nbio_helpers bench")
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
