"""The live demonstrations of notebook 04 (select), each bounded and safe to re-run.

* :class:`AlwaysWritableSelectServer` — the mistake of many tutorials: asking ``select()`` for
  write readiness on every socket. An idle socket is always writable, so the loop never sleeps.
  :func:`measure_idle` shows it (CPU share and wake-ups per second with idle clients).
* :class:`HeartbeatSelectServer` — ``select()``'s timeout used for periodic work.
* :func:`partial_send_report` — an 8 MiB echo through small socket buffers, with the partial
  sends counted from the event log (:func:`count_partial_sends`).
* :func:`select_on_high_descriptor` and :func:`high_descriptor_client` — the FD_SETSIZE limit:
  ``select()`` refuses a descriptor >= 1024 (POSIX), and the select server refuses such a
  client while it keeps serving the others.
* :func:`compare_models` — any models side by side (idle CPU and loop rounds, latency,
  throughput), with :func:`format_table` and :func:`plot_comparison`.

Usage::

    from nbio_helpers.select_demos import measure_idle, AlwaysWritableSelectServer
    with AlwaysWritableSelectServer() as server:
        measure_idle(server, clients=10, seconds=0.5)
        # IdleMeasure(cpu_share≈1.0, wakeups_per_second≈100_000): it never sleeps
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
import os
import select
import socket
import sys
import time
from typing import Iterable

from .clients import connect, recv_exactly, request, run_load
from .connection import Connection, accept_all, close_finished
from .events import ACCEPT, ACCEPT_WOULD_BLOCK, CLOSE, RECV, SEND, WAKEUP
from .limits import fd_limit_raised
from .models import MODELS
from .models.select_model import FD_SETSIZE, WINDOWS_SELECT_LIMIT, SelectServer
from .server import Server, wait_until

MiB = 1024 * 1024


# --------------------------------------------------------------------------- select loops
def serve_ready(server: SelectServer, readable: list, writable: list, connections: list) -> list:
    """Serve what ``select()`` reported ready, exactly as :class:`SelectServer` does.

    Returns the connections still open (accepted ones added, closed ones dropped).
    """
    for ready in readable:
        if ready is server.listener:
            connections += [c for c in accept_all(server) if server.fits_in_select(c, connections)]
        elif ready is server.waker:
            server.drain_waker()
        else:
            ready.on_readable()
    for ready in writable:
        if ready.wants_write:      # only try to send what is pending
            ready.on_writable()
    return close_finished(connections)


class AlwaysWritableSelectServer(SelectServer):
    """The tutorial mistake: every open connection goes into ``wlist``, pending output or not.

    A socket with room in its send buffer is *writable*, and an idle socket always has room:
    ``select()`` returns at once, every time, and the loop spins at a full core.
    """

    model = "select-always-write"

    def serve(self) -> None:
        self.listener.setblocking(False)
        connections: list[Connection] = []
        while not self.stopping:
            rlist = [self.listener, self.waker] + [c for c in connections if c.wants_read]
            wlist = [c for c in connections if not c.closed]          # the mistake
            readable, writable, _ = select.select(rlist, wlist, [])
            self.events.record(WAKEUP, nbytes=len(readable) + len(writable))
            connections = serve_ready(self, readable, writable, connections)


class HeartbeatSelectServer(SelectServer):
    """A select server that also does periodic work: ``beats`` grows every ``every`` seconds.

    ``select()``'s last argument is a timeout: the loop sleeps until a socket is ready *or*
    the next beat is due, whichever comes first, so no thread and no busy loop is needed.
    """

    model = "select-heartbeat"

    def __init__(self, *args, every: float = 0.05, **kwargs):
        super().__init__(*args, **kwargs)
        if every <= 0:
            raise ValueError(f"every must be > 0 seconds, not {every!r}")
        self.every = every
        self.beats = 0

    def serve(self) -> None:
        self.listener.setblocking(False)
        connections: list[Connection] = []
        next_beat = time.monotonic() + self.every
        while not self.stopping:
            rlist = [self.listener, self.waker] + [c for c in connections if c.wants_read]
            wlist = [c for c in connections if c.wants_write]
            timeout = max(0.0, next_beat - time.monotonic())
            readable, writable, _ = select.select(rlist, wlist, [], timeout)
            self.events.record(WAKEUP, nbytes=len(readable) + len(writable))
            if time.monotonic() >= next_beat:      # the periodic work
                self.beats += 1
                next_beat += self.every
            connections = serve_ready(self, readable, writable, connections)


# --------------------------------------------------------------------------- idle cost
@dataclasses.dataclass
class IdleMeasure:
    """What :func:`measure_idle` saw while every client was silent.

    ``cpu_share``: the server thread's CPU time as a fraction of one core (1.0 = a full core).
    ``wakeups_per_second``: how many times per second its loop went round (``select()``
    returned, or a polling round ended). Sleeping loops make almost none. The count does not
    depend on how busy the machine is the way CPU share does: a spinning loop that gets only
    a slice of a core still goes round thousands of times per second.
    """

    cpu_share: float
    wakeups_per_second: float


def loop_rounds(server: Server) -> int:
    """How many times ``server``'s loop has gone round so far, read from its event log.

    Waiting loops (select, sleeping polls) record a ``WAKEUP`` each time they return; the
    polling loop records an ``ACCEPT_WOULD_BLOCK`` every round, busy or not. The larger of
    the two counts is the number of rounds. Counted even with ``record_events=False``.
    """
    return max(server.events.count(WAKEUP), server.events.count(ACCEPT_WOULD_BLOCK))


def measure_idle(server: Server, clients: int = 10, seconds: float = 0.5) -> IdleMeasure:
    """Connect ``clients`` idle clients, wait until all are accepted, then measure the server
    thread's CPU share and its loop's rounds over ``seconds``. Clients are closed afterwards.

    Works for any model that counts its rounds (see :func:`loop_rounds`).
    Raises ``TimeoutError`` if the server has not accepted every client within 5 seconds.
    """
    socks = []
    try:
        accepted = server.events.count(ACCEPT)
        for _ in range(clients):
            socks.append(connect(server.address))
        if not wait_until(lambda: server.events.count(ACCEPT) >= accepted + clients, timeout=5.0):
            raise TimeoutError(f"the server did not accept {clients} clients within 5 s")
        c0, w0, t0 = server.cpu_time(), loop_rounds(server), time.perf_counter()
        time.sleep(seconds)
        c1, w1, t1 = server.cpu_time(), loop_rounds(server), time.perf_counter()
    finally:
        for sock in socks:
            sock.close()
    return IdleMeasure((c1 - c0) / (t1 - t0), (w1 - w0) / (t1 - t0))


# --------------------------------------------------------------------------- partial sends
def count_partial_sends(events: Iterable) -> int:
    """How many ``send()`` calls took less than the output pending at that moment.

    Rebuilds each connection's pending output from the log: a ``recv`` of n bytes queues an
    n-byte echo, a ``send`` of n bytes removes n. Needs no socket (test it with plain events).
    """
    pending: dict = {}
    partial = 0
    for event in events:
        if event.kind == RECV:
            pending[event.conn] = pending.get(event.conn, 0) + event.nbytes
        elif event.kind == SEND:
            before = pending.get(event.conn, 0)
            if event.nbytes < before:
                partial += 1
            pending[event.conn] = before - event.nbytes
    return partial


@dataclasses.dataclass
class PartialSendReport:
    """One big echo through a select server, counted from its event log."""

    ok: bool              # the echo came back byte for byte
    payload: int          # bytes sent (and expected back)
    recv_calls: int
    send_calls: int
    partial_sends: int
    would_block: int      # send() raised BlockingIOError although select() said writable
    pauses: int           # backpressure: reading stopped while too much output was pending


def partial_send_report(payload: int = 8 * MiB, sndbuf: int = 16 * 1024,
                        timeout: float = 10.0) -> PartialSendReport:
    """Echo ``payload`` random bytes through a :class:`SelectServer` whose sockets have a
    small send buffer (``SO_SNDBUF`` set on the listener is inherited by accepted sockets).
    """
    with SelectServer(name="partial-sends") as server:
        server.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        result = run_load(server.address, clients=1, messages=1, size=payload, timeout=timeout)
        wait_until(lambda: server.events.count(CLOSE) >= 1, timeout=2.0)
        log = server.events
        return PartialSendReport(
            ok=result.ok, payload=payload, recv_calls=log.count(RECV), send_calls=log.count(SEND),
            partial_sends=count_partial_sends(log.events()),
            would_block=log.count("send_would_block"), pauses=log.count("pause"))


# --------------------------------------------------------------------------- FD_SETSIZE
@dataclasses.dataclass
class LimitDemo:
    """The outcome of a FD_SETSIZE demonstration. ``ran`` is False where it cannot run."""

    ran: bool
    error: str = ""           # e.g. "ValueError" (the type only: the message differs by OS)
    message: str = ""         # the exception's own text
    explanation: str = ""


def select_on_high_descriptor(limit: int = FD_SETSIZE) -> LimitDemo:
    """Give ``select()`` one socket whose descriptor is >= ``limit`` and report what it raised.

    POSIX: a socket is duplicated to the first free descriptor >= ``limit`` (raising the soft
    open-files limit for a moment if needed), passed to ``select()``, then closed.
    Windows: ``select()`` counts sockets instead; 513 sockets are passed. Nothing is left open.
    """
    if sys.platform == "win32":
        socks = [socket.socket() for _ in range(WINDOWS_SELECT_LIMIT + 1)]
        try:
            select.select(socks, [], [], 0)
        except ValueError as exc:
            return LimitDemo(True, "ValueError", str(exc),
                             "Windows select() takes at most 512 sockets")
        finally:
            for sock in socks:
                sock.close()
        return LimitDemo(True, "", "", "select() accepted 513 sockets on this Windows build")
    try:
        import fcntl
    except ImportError:
        return LimitDemo(False, explanation="no fcntl module here to place a descriptor")
    with fd_limit_raised(limit + 64) as fds:
        if fds is not None and fds < limit + 64:
            return LimitDemo(False, explanation=(
                f"cannot open a descriptor >= {limit} here: the open-files limit is {fds}"))
        a, b = socket.socketpair()
        high = None
        try:
            high = socket.socket(fileno=fcntl.fcntl(a.fileno(), fcntl.F_DUPFD, limit))
            select.select([high], [], [], 0)
        except ValueError as exc:
            return LimitDemo(True, "ValueError", str(exc),
                             f"select() only takes descriptors below FD_SETSIZE ({limit})")
        except OSError as exc:
            return LimitDemo(False, explanation=(
                f"could not place a socket at descriptor >= {limit}: {exc}"))
        finally:
            for sock in (high, a, b):
                if sock is not None:
                    sock.close()
    return LimitDemo(True, "", "", "select() accepted the descriptor on this platform")


@contextlib.contextmanager
def low_descriptors_taken(limit: int = FD_SETSIZE):
    """Within the block, every descriptor below ``limit`` is in use, so the next socket this
    process opens (or accepts) gets a descriptor >= ``limit``. POSIX only; all closed on exit.

    Yields how many placeholder descriptors were opened.
    """
    with fd_limit_raised(limit + 256) as fds:
        if fds is not None and fds < limit + 256:
            raise OSError(errno.EMFILE, f"the open-files limit ({fds}) cannot be raised to "
                                        f"{limit + 256}")
        placeholders: list[int] = []
        try:
            fd = os.open(os.devnull, os.O_RDONLY)
            placeholders.append(fd)
            while fd < limit - 1:
                fd = os.dup(placeholders[0])  # the lowest free one: fills the holes in order
                placeholders.append(fd)
            yield len(placeholders)
        finally:
            for fd in placeholders:
                os.close(fd)


@dataclasses.dataclass
class HighDescriptorOutcome:
    """What happened to a client whose server-side socket got a descriptor >= FD_SETSIZE."""

    ran: bool
    model: str = ""
    high_client_served: bool = False   # its echo came back
    refusal: str = ""                  # the server's recorded reason for closing it, if any
    others_served: bool = False        # a client connected before, and one after, were served
    explanation: str = ""


def high_descriptor_client(model: str = "select", timeout: float = 5.0) -> HighDescriptorOutcome:
    """Start a ``model`` server, connect one client normally, then one while every descriptor
    below FD_SETSIZE is taken (so the server accepts it as descriptor >= 1024), then another
    normally. Reports whether the high one was served and what the server recorded.

    Skips (``ran=False``) on Windows, where select's limit counts sockets, not descriptor numbers.
    """
    if sys.platform == "win32":
        return HighDescriptorOutcome(False, model, explanation=(
            "Windows: select() limits the number of sockets (512), not descriptor numbers"))
    server = MODELS[model](name=f"fd-limit-{model}").start()
    try:
        with connect(server.address, timeout) as before:
            before.sendall(b"before")
            first = recv_exactly(before, 6, timeout)
            closes = server.events.count(CLOSE)
            try:
                with low_descriptors_taken():
                    high = connect(server.address, timeout)
                    # The server accepts it while the low descriptors are still taken.
                    wait_until(lambda: server.events.count(ACCEPT) >= 2, timeout)
            except (ImportError, OSError, RuntimeError) as exc:
                return HighDescriptorOutcome(False, model, explanation=(
                    f"cannot open a descriptor >= {FD_SETSIZE} here: {exc}"))
            with high:
                try:
                    high.sendall(b"high")
                    served = recv_exactly(high, 4, timeout) == b"HIGH"
                except (ConnectionError, TimeoutError, OSError):
                    served = False
            wait_until(lambda: server.events.count(CLOSE) > closes or served, timeout)
            refusals = [e.detail for e in server.events.events(CLOSE) if "FD_SETSIZE" in e.detail]
            before.sendall(b"still here")
            others = first == b"BEFORE" and recv_exactly(before, 10, timeout) == b"STILL HERE"
            others = others and request(server.address, b"after", timeout) == b"AFTER"
        return HighDescriptorOutcome(True, model, served, refusals[0] if refusals else "", others)
    finally:
        server.stop()


# --------------------------------------------------------------------------- comparison
@dataclasses.dataclass
class ModelRow:
    """One model's figures in :func:`compare_models`. Times in seconds, CPU in cores."""

    label: str
    model: str
    options: dict
    idle_cpu: float            # share of one core, with silent clients connected
    idle_wakeups: float        # loop rounds per second meanwhile (see loop_rounds)
    median_latency: float
    p90_latency: float         # 9 requests in 10 were answered at least this fast
    throughput: float          # messages per second, under the concurrent load
    load_ok: bool              # every echo of the load came back intact

    def as_dict(self) -> dict:
        """Plain values (for JSON, pandas, or a table of your own)."""
        return dataclasses.asdict(self)


def _model_spec(spec) -> tuple[str, object, dict]:
    """Normalise a model spec to (label, model name or Server class, options)."""
    if isinstance(spec, (str, type)):
        spec = (spec, {})
    if len(spec) == 2:
        model, options = spec
        name = model if isinstance(model, str) else getattr(model, "model", model.__name__)
        extra = " ".join(f"{k}={v}" for k, v in options.items())
        return (f"{name} {extra}".strip(), model, dict(options))
    label, model, options = spec
    return label, model, dict(options)


def percentile(samples, fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with ``fraction`` of them at or below it.

    ``percentile(latencies, 0.9)`` with 40 samples is the 36th fastest; ``nan`` if empty.
    """
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def compare_models(models, *, idle_clients: int = 20, idle_seconds: float = 0.5,
                   requests: int = 40, size: int = 64, load_clients: int = 20,
                   load_messages: int = 20, timeout: float = 10.0) -> list[ModelRow]:
    """Measure each model on the same load, one after another; return one row per model.

    Parameters
    ----------
    models:
        Each item is a model name (``"select"``), ``(model, options)`` (label made from
        them, e.g. ``("polling", {"interval": 0.01})`` -> ``"polling interval=0.01"``), or
        ``(label, model, options)``. ``model`` is a name in :data:`MODELS` or a Server class.
    idle_clients, idle_seconds:
        Silent clients connected while the server's CPU share and loop rounds are measured
        (:func:`measure_idle`).
    requests, size:
        Sequential requests of ``size`` bytes on one connection, for the median and p90
        latency (:func:`nbio_helpers.measure.latency_stats`; the random pause before each
        request spans a model's ``interval`` option, so sleeping pollers are caught at every
        phase). p90 rather than p99: a few dozen requests cannot tell a p99 from the maximum,
        and one hiccup of a busy machine would decide it.
    load_clients, load_messages:
        Concurrent clients and messages each, for throughput
        (:func:`nbio_helpers.measure.throughput`).
    timeout:
        Bound on each latency and load measurement, in seconds.

    Returns
    -------
    list of :class:`ModelRow`, in the order given. Every server is stopped before returning.
    """
    from . import measure  # the measurements shared by notebooks 03-05
    rows = []
    for spec in models:
        label, model, options = _model_spec(spec)
        cls = MODELS[model] if isinstance(model, str) else model
        spacing = (0.0, max(0.002, options.get("interval", 0.0)))
        with cls(name=f"compare-{label}", record_events=False, **options) as server:
            idle = measure_idle(server, idle_clients, idle_seconds)
            lat = measure.latency_stats(server.address, requests, size, timeout, spacing)
            load = measure.throughput(server.address, load_clients, load_messages, size, timeout)
        rows.append(ModelRow(
            label=label, model=getattr(cls, "model", str(model)), options=options,
            idle_cpu=idle.cpu_share, idle_wakeups=idle.wakeups_per_second,
            median_latency=lat.median, p90_latency=percentile(lat.samples, 0.9),
            throughput=load.messages_per_second, load_ok=load.ok))
    return rows


def format_table(rows: list[ModelRow]) -> str:
    """A small fixed-width text table of :func:`compare_models` rows (rounded figures)."""
    header = (f"{'model':<24} {'idle CPU':>8} {'idle rounds/s':>13} {'median':>10} "
              f"{'p90':>10} {'msg/s':>8}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.label:<24} {r.idle_cpu:>8.0%} {r.idle_wakeups:>13,.0f} "
                     f"{_ms(r.median_latency):>10} {_ms(r.p90_latency):>10} {r.throughput:>8,.0f}")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


def plot_comparison(rows: list[ModelRow], *, title: str | None = None):
    """One figure, three panels sharing the model axis: CPU share while idle, request latency
    (median bar, p90 tick; log scale) and throughput. Each bar is labelled with its value.

    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    labels = [r.label for r in rows]
    y = list(range(len(rows)))
    fig, (ax_cpu, ax_lat, ax_tput) = plt.subplots(1, 3, figsize=(11, 0.55 * len(rows) + 2.0),
                                                  sharey=True)
    cpu = [r.idle_cpu for r in rows]
    ax_cpu.barh(y, cpu, color="tab:red")
    ax_cpu.axvline(1.0, color="gray", ls=":", lw=1)
    ax_cpu.set_xlim(0, max(1.3, max(cpu) * 1.3))
    ax_cpu.set_xlabel("CPU while idle (1 = one full core)")
    _label_bars(ax_cpu, cpu, [f"{v:.0%}" for v in cpu])
    median = [r.median_latency * 1000 for r in rows]
    p90 = [r.p90_latency * 1000 for r in rows]
    ax_lat.barh(y, median, color="tab:blue")
    ax_lat.plot(p90, y, "k|", markersize=16, markeredgewidth=2)
    ax_lat.set_xscale("log")
    finite = [v for v in median + p90 if v > 0 and math.isfinite(v)] or [1.0]
    ax_lat.set_xlim(min(finite) / 3, max(finite) * 40)
    ax_lat.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax_lat.set_xlabel("reply latency, ms, log scale (bar: median, |: p90)")
    _label_bars(ax_lat, p90, [f"{m:.2g} ms (p90 {p:.2g})" for m, p in zip(median, p90)],
                log=True)
    tput = [r.throughput for r in rows]
    ax_tput.barh(y, tput, color="tab:green")
    ax_tput.set_xlim(0, max(tput) * 1.35 if max(tput) > 0 else 1)
    ax_tput.set_xlabel("throughput (messages/s)")
    _label_bars(ax_tput, tput, [f"{v:,.0f}" for v in tput])
    ax_cpu.set_yticks(y, labels)
    ax_cpu.invert_yaxis()
    for ax in (ax_cpu, ax_lat, ax_tput):
        ax.grid(axis="y", visible=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _label_bars(ax, ends, texts, log: bool = False) -> None:
    """Write ``texts`` just right of each bar (or mark) ending at ``ends``."""
    for i, (end, text) in enumerate(zip(ends, texts)):
        if not math.isfinite(end):
            continue
        x = end * 1.25 if log else end
        ax.annotate(text, (x, i), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=9)
