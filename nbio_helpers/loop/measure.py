"""Notebook 06's measurements: our loop against asyncio, tasks against threads, the pitfall.

Latency and throughput are measured by clients in a **separate process** (a client thread in
the kernel would share the GIL with the server thread it measures); the servers run in this
process, in their thread, as everywhere in the series. Each function is bounded in time and
stops what it starts::

    rows = compare_loops()                 # tasks vs asyncio vs selectors, several rounds
    print(loops_table(rows))
    memory = idle_memory()                 # bytes per idle connection: tasks vs threads
    blocked = blocking_call_latency(blocking=True, samples=True)   # one task: time.sleep()
    polite = blocking_call_latency(blocking=False, samples=True)   # await loop.sleep()
    plot_blocking_call(blocked, polite)

:func:`compare_loops` drives the load from the series' shared client process
(:func:`nbio_helpers.measure.echo.measure_load`, with the automatic GC paused as for every
measurement there). :func:`blocking_call_latency` needs what that load does not have: clients
that send at a steady pace and the send time of every message (for the plot); its clients,
:func:`echo_clients`, run in a process of their own. Percentiles, the tail rule and the spread
of rounds are those of :mod:`nbio_helpers.measure.stats`, the one definition of the series.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import threading
import time
from typing import Any

from nbio_helpers.clients import connect, recv_exactly
from nbio_helpers.limits import raise_fd_limit
from nbio_helpers.loop.pitfall import PAUSE_COMMAND, PausingEchoServer
from nbio_helpers.measure import stats
from nbio_helpers.measure.echo import EchoLoad, measure_load
from nbio_helpers.measure.process import ClientProcess
from nbio_helpers.measure.stats import Spread, percentile, tail
from nbio_helpers.models import MODELS

LOOP_MODELS = ("tasks", "asyncio", "selectors")
"""Our loop, asyncio's, and the plain selectors loop, compared by :func:`compare_loops`."""


# --------------------------------------------------------------- the separate client process
def _client_script() -> str:
    """The client process's program: :func:`echo_clients`, which needs only the standard
    library and :mod:`nbio_helpers.measure.stats` (loaded from its file alone, which imports nothing
    from the package), so that the process starts in milliseconds (importing the package,
    asyncio included, would take a good part of a second)."""
    import inspect

    return "\n".join(
        [
            "import importlib.util, json, math, sys, time",
            f"_spec = importlib.util.spec_from_file_location('nbio_stats', {stats.__file__!r})",
            "stats = importlib.util.module_from_spec(_spec)",
            "_spec.loader.exec_module(stats)",
            "percentile, tail = stats.percentile, stats.tail",
            inspect.getsource(echo_clients),
            "print(json.dumps(echo_clients(**json.loads(sys.argv[1]))))",
        ]
    )


def echo_clients(
    host: str,
    port: int,
    clients: int = 50,
    size: int = 64,
    interval: float = 0.0,
    warmup: float = 0.2,
    seconds: float = 1.0,
    samples: bool = False,
) -> dict:
    """Echo clients for ``warmup + seconds``; figures over the last ``seconds`` only.

    Each client sends a ``size``-byte message, waits for its whole echo (checked), and sends
    the next one at once (``interval`` 0: as fast as the server answers) or ``interval``
    seconds after the previous one was sent. Runs wherever it is called: use
    :func:`load_from_another_process` to run it in a separate process. Returns plain numbers
    (seconds): ``completed``, ``messages_per_second``, ``median``, ``tail`` and its
    ``tail_name`` (``p99``, ``p90`` or ``max``, by the tail rule of
    :mod:`nbio_helpers.measure.stats`),
    ``max``, ``over_100ms``; with ``samples``, also ``[(sent_at, latency, client)]`` (times from
    the start of the window) for a plot.
    """
    import selectors
    import socket

    message = (b"echo me, loop! " * (size // 15 + 1))[:size]
    expected = message.upper()
    sel = selectors.DefaultSelector()
    socks, errors, kept = [], [], []
    state: dict[socket.socket, list[Any]] = {}  # sock -> [index, sent_at, got, next_at]
    try:
        for i in range(clients):
            sock = socket.create_connection((host, port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            socks.append(sock)
            state[sock] = [i, None, b"", 0.0]
            sel.register(sock, selectors.EVENT_READ, sock)  # data: the socket, typed
        start = time.perf_counter()
        window, end = start + warmup, start + warmup + seconds
        while (now := time.perf_counter()) < end:
            for sock, st in state.items():  # send whatever is due
                if st[1] is None and now >= st[3]:
                    try:
                        sock.sendall(message)  # 64 bytes: fits in the buffer
                    except OSError as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    st[1], st[2] = now, b""
            due = [st[3] for st in state.values() if st[1] is None]
            timeout = max(0.0, min([end - now, *[d - now for d in due]])) if due else end - now
            for key, _ in sel.select(min(timeout, 0.05)):
                sock = key.data
                st = state[sock]
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    chunk, errors[len(errors) :] = b"", [f"{type(exc).__name__}: {exc}"]
                if not chunk:
                    errors.append("the server closed a connection")
                    sel.unregister(sock)
                    st[1] = math.inf  # never sends again
                    continue
                st[2] += chunk
                if len(st[2]) >= size:
                    done = time.perf_counter()
                    if st[2] != expected:
                        errors.append("an echo differs from what was sent")
                    if st[1] >= window:
                        kept.append((st[1] - window, done - st[1], st[0]))
                    st[3] = (st[1] + interval) if interval else done
                    st[1] = None
    finally:
        sel.close()
        for sock in socks:
            sock.close()
    ordered = sorted(latency for _, latency, _ in kept)
    slow = tail(ordered)
    result = {
        "ok": not errors,
        "errors": errors[:5],
        "completed": len(ordered),
        "seconds": seconds,
        "messages_per_second": len(ordered) / seconds,
        "median": percentile(ordered, 0.5),
        "tail": slow.value,
        "tail_name": slow.name,
        "max": ordered[-1] if ordered else math.nan,
        "over_100ms": sum(1 for x in ordered if x > 0.1),
    }
    if samples:
        result["samples"] = kept
    return result


def load_from_another_process(address, **options) -> dict:
    """:func:`echo_clients` against ``address``, run in a new Python process (so that the
    clients do not share this process's GIL with the server they measure)."""
    args = json.dumps({"host": address[0], "port": address[1], **options})
    wall = options.get("warmup", 0.2) + options.get("seconds", 1.0)
    done = subprocess.run(
        [sys.executable, "-c", _client_script(), args],
        capture_output=True,
        text=True,
        timeout=wall + 60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the client process failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


# ------------------------------------------------------------------ our loop against asyncio
@dataclasses.dataclass
class LoopFigures:
    """One model's rounds in :func:`compare_loops`: lists with one value per round, and every
    echo's latency of every round (``latencies``, seconds) for the pooled figures."""

    model: str
    throughput: list[float]  # messages per second, per round
    median: list[float]  # seconds, per round
    p90: list[float]  # seconds, per round (nan for a round of fewer than 100 echoes)
    ok: bool
    messages: list[int] = dataclasses.field(default_factory=list)  # per round
    seconds: list[float] = dataclasses.field(default_factory=list)  # measured, per round
    latencies: list[float] = dataclasses.field(default_factory=list, repr=False)

    def spread(self, name: str) -> Spread:
        """``throughput``, ``median`` or ``p90`` as a :class:`~nbio_helpers.measure.stats.Spread`:
        the pooled figure (every echo of every round; throughput = all messages over all
        measured seconds) and the lowest and highest round. Without pooled data (a row made
        by hand), the value is the median of the rounds."""
        values = getattr(self, name)
        pooled = None
        if name == "throughput" and self.messages and sum(self.seconds) > 0:
            pooled = sum(self.messages) / sum(self.seconds)
        elif name in ("median", "p90") and self.latencies:
            pooled = (
                p90_or_nan(self.latencies) if name == "p90" else percentile(self.latencies, 0.5)
            )
        return Spread.of(values, pooled=pooled)


def p90_or_nan(latencies: list[float]) -> float:
    """The p90 of ``latencies``, or nan when there are too few to name one (fewer than 100:
    the tail rule of :mod:`nbio_helpers.measure.stats`)."""
    return percentile(latencies, 0.9) if stats.tail_name(len(latencies)) != "max" else math.nan


LOOP_LOAD = EchoLoad(clients=50, size=64, warmup=0.2, seconds=0.5)
""":func:`compare_loops`' load: 50 clients echoing 64 bytes, 0.2 s of warm-up, 0.5 s measured."""


def compare_loops(
    models=LOOP_MODELS,
    load: EchoLoad = LOOP_LOAD,
    *,
    rounds: int = 3,
    process: ClientProcess | None = None,
    **changes,
) -> list[LoopFigures]:
    """The same load on each model, ``rounds`` times (the order reversed every other round,
    so none is always first).

    Parameters
    ----------
    models:
        Names in ``MODELS`` (default: ``tasks``, ``asyncio``, ``selectors``).
    load:
        The :class:`~nbio_helpers.measure.echo.EchoLoad` (concurrent clients, each sending
        its next message as soon as its echo is back, every echo checked); default
        :data:`LOOP_LOAD`.
    rounds:
        Each model is measured once per round.
    process:
        The client process (default: the shared one of :mod:`nbio_helpers.measure`).
    changes:
        Fields of ``load`` to change: ``compare_loops(rounds=1, warmup=0.1, seconds=0.3)``.

    Returns
    -------
    One :class:`LoopFigures` per model, in the order given. About
    ``(load.duration + 0.1) * rounds * len(models)`` seconds.
    """
    load = dataclasses.replace(load, **changes)
    figures = {m: LoopFigures(m, [], [], [], True) for m in models}
    for round_ in range(rounds):
        for model in models if round_ % 2 == 0 else models[::-1]:
            with MODELS[model](
                name=f"compare-loops-{model}",
                record_events=False,
                backlog=max(128, load.clients + 10),
            ) as server:
                run = measure_load(server, load, process=process, keep_latencies=True).reply
            latencies = run["latencies_s"]
            row = figures[model]
            row.throughput.append(run["messages_per_second"])
            row.median.append(percentile(latencies, 0.5))
            row.p90.append(p90_or_nan(latencies))
            row.messages.append(run["messages"])
            row.seconds.append(run["seconds"])
            row.latencies.extend(latencies)
            row.ok = row.ok and not run["errors"] and run["messages"] > 0
    return list(figures.values())


def loops_table(rows: list[LoopFigures]) -> str:
    """:func:`compare_loops` as text: the pooled figures, the lowest and highest round in
    brackets (no brackets after a single round: there is no spread to show)."""
    rounds = max((len(r.throughput) for r in rows), default=0)
    if rounds <= 1:
        lines = [f"{'model':<11}{'messages/s':>12}{'median latency':>17}{'p90':>11}"]
        for r in rows:
            t, m, p = r.spread("throughput"), r.spread("median"), r.spread("p90")
            lines.append(
                f"{r.model:<11}{t.value:>12,.0f}{m.value * 1e3:>14.3f} ms{p.value * 1e3:>8.3f} ms"
            )
        return "\n".join(lines)
    lines = [f"{'model':<11}{'messages/s':>28}{'median latency (ms)':>30}{'p90 (ms)':>26}"]
    for r in rows:
        t, m, p = r.spread("throughput"), r.spread("median"), r.spread("p90")
        lines.append(
            f"{r.model:<11}{t.value:>12,.0f} [{t.low:,.0f}–{t.high:,.0f}]"
            f"{m.value * 1e3:>14.3f} [{m.low * 1e3:.3f}–{m.high * 1e3:.3f}]"
            f"{p.value * 1e3:>12.3f} [{p.low * 1e3:.3f}–{p.high * 1e3:.3f}]"
        )
    return "\n".join(lines)


# ------------------------------------------------------------- memory per idle connection
_SERVER = """
import json, sys, threading
from nbio_helpers import start_server
from nbio_helpers.limits import raise_fd_limit
model, wanted = sys.argv[1], int(sys.argv[2])
limit = raise_fd_limit(wanted + 100)
server = start_server(model, record_events=False, backlog=min(wanted + 100, 65535))
print(json.dumps({"port": server.address[1], "fd_limit": limit}), flush=True)
for line in sys.stdin:
    if line.strip() == "count":
        print(json.dumps({"accepted": server.events.count("accept"),
                          "threads": threading.active_count()}), flush=True)
    else:
        break
server.stop()
"""


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def idle_memory_of(model: str, count: int, timeout: float = 60.0) -> dict:
    """Resident memory per idle connection of a ``model`` server holding ``count`` silent
    clients: the server runs alone in a new process, the clients in the bench's load process.

    Returns ``{"model", "connections", "bytes_per_connection", "rss_before", "rss_after",
    "seconds", "note"}``; ``connections`` may be fewer than ``count`` when the descriptor
    limit is too low (``note`` says so).
    """
    from nbio_helpers.bench.worker import LoadProcess

    started = time.monotonic()
    note = ""
    limit = raise_fd_limit(count + 200)
    if limit is not None and limit < count + 200:
        note = (
            f"the descriptor limit is {limit}: measured with {limit - 200} connections "
            f"instead of {count:,}"
        )
        count = max(10, limit - 200)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, model, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = proc.stdin, proc.stdout
    assert stdin is not None and stdout is not None  # both PIPE
    try:
        hello = json.loads(stdout.readline())
        if hello["fd_limit"] is not None and hello["fd_limit"] < count + 100:
            count = max(10, hello["fd_limit"] - 100)
            note = (
                note or f"the server's descriptor limit is {hello['fd_limit']}: {count} connections"
            )

        def accepted():
            stdin.write("count\n")
            stdin.flush()
            return json.loads(stdout.readline())["accepted"]

        with LoadProcess() as load:
            warm = load.call(
                "hold", host="127.0.0.1", port=hello["port"], count=50, check=True, timeout=timeout
            )  # first objects, lazily made
            load.call("release")
            deadline = time.monotonic() + 5
            while accepted() < warm.get("opened", 0) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # the warm-up connections closed, threads ended
            before = _rss(proc.pid)
            held = load.call(
                "hold",
                host="127.0.0.1",
                port=hello["port"],
                count=count,
                check=False,
                within=timeout,
                timeout=timeout + 30,
            )
            deadline = time.monotonic() + timeout
            total = warm.get("opened", 0) + held.get("opened", 0)
            while accepted() < total and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            after = _rss(proc.pid)
            load.call("release")
        opened = held.get("opened", 0)
        if opened < count and not note:
            note = f"only {opened} of {count} connections opened: {held.get('errors')}"
        return {
            "model": model,
            "connections": opened,
            "bytes_per_connection": (after - before) / opened if opened else math.nan,
            "rss_before": before,
            "rss_after": after,
            "seconds": time.monotonic() - started,
            "note": note,
        }
    finally:
        try:
            stdin.write("quit\n")
            stdin.close()
            proc.wait(20)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        stdout.close()


def idle_memory(tasks: int = 10_000, threads: int = 1_000) -> list[dict]:
    """Memory per idle connection: ``tasks`` connections on our loop (``tasks`` model), then
    ``threads`` connections on the ``threads`` model (a thread each). About 5 s in all."""
    return [idle_memory_of("tasks", tasks), idle_memory_of("threads", threads)]


# ----------------------------------------------------------- one blocking call in one task
def blocking_call_latency(
    blocking: bool = True,
    pause: float = 0.2,
    pauses: int = 3,
    clients: int = 10,
    interval: float = 0.01,
    samples: bool = False,
) -> dict:
    """What the other clients see while one task pauses ``pauses`` times for ``pause`` s.

    A :class:`~.pitfall.PausingEchoServer` runs in this process. ``clients`` clients in a
    separate process each send a message every ``interval`` seconds (waiting for each echo)
    while a client here sends ``!pause`` every ``2 * pause`` seconds, the first at 0.1 s.
    ``blocking=True`` pauses with ``time.sleep()`` (every client waits), False with
    ``await loop.sleep()`` (only the pausing client waits). Returns the others' figures
    (:func:`echo_clients`; ``samples`` for a plot) plus ``pause``, ``pauses``, ``blocking``
    and ``paused_at`` (seconds from the start of the others' window). About
    ``0.4 + 2 * pause * pauses`` seconds.
    """
    warmup, seconds = 0.2, 0.2 + 2 * pause * pauses
    with PausingEchoServer(
        pause=pause, blocking=blocking, record_events=False, name="pitfall"
    ) as server:
        result: dict = {}
        others = threading.Thread(
            target=lambda: result.update(
                load_from_another_process(
                    server.address,
                    clients=clients,
                    interval=interval,
                    warmup=warmup,
                    seconds=seconds,
                    samples=samples,
                )
            ),
            name="pitfall-clients",
            daemon=True,
        )
        paused_at = []
        with connect(server.address, timeout=10) as pauser:
            others.start()
            deadline = time.monotonic() + 20
            while server.events.count("accept") < clients + 1 and time.monotonic() < deadline:
                time.sleep(0.005)
            window = time.monotonic() + warmup  # the others' window starts about now
            time.sleep(warmup + 0.1)
            for _ in range(pauses):
                paused_at.append(time.monotonic() - window)
                pauser.sendall(PAUSE_COMMAND)
                assert recv_exactly(pauser, len(PAUSE_COMMAND), timeout=10) == b"!PAUSE"
                time.sleep(pause)
            others.join(60)
    result.update(pause=pause, blocking=blocking, pauses=pauses, paused_at=paused_at)
    return result


def plot_blocking_call(blocked: dict, cooperative: dict, title: str | None = None):
    """The other clients' latency over time, with ``time.sleep()`` and with
    ``await loop.sleep()``: the two results of :func:`blocking_call_latency` (with
    ``samples=True``). Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, 2, sharey=True, layout="constrained", figsize=(plt.rcParams["figure.figsize"][0], 3.2)
    )
    for ax, result, label in (
        (axes[0], blocked, "time.sleep() in one task"),
        (axes[1], cooperative, "await loop.sleep() in one task"),
    ):
        points = result.get("samples", [])
        ax.scatter(
            [t * 1e3 for t, _, _ in points],
            [lat * 1e3 for _, lat, _ in points],
            s=4,
            color="tab:blue",
            label="another client's message",
            zorder=2,
        )
        for i, at in enumerate(result.get("paused_at", [])):
            ax.axvspan(
                at * 1e3,
                (at + result["pause"]) * 1e3,
                color="tab:red",
                alpha=0.12,
                label="one task pauses" if i == 0 else None,
            )
            # The messages that waited out the pause are sent at about the same moment with
            # about the same latency: drawn on top of each other. Say how many.
            waited = [
                lat
                for t, lat, _ in points
                if at - 0.05 <= t <= at + result["pause"] and lat > result["pause"] / 2
            ]
            if waited:
                ax.annotate(
                    f"{len(waited)} messages\nwaited it out",
                    (at * 1e3, max(waited) * 1e3),
                    textcoords="offset points",
                    xytext=(6, -4),
                    va="top",
                    fontsize=8,
                    color="tab:red",
                )
        ax.set_yscale("log")
        ax.set_xlabel("time (ms)")
        ax.set_title(label)
    axes[0].set_ylabel("latency (ms, log)")
    axes[1].legend(loc="center right")  # the empty band between the two clouds
    if title:
        fig.suptitle(title)
    return fig


__all__ = [
    "LOOP_LOAD",
    "LOOP_MODELS",
    "LoopFigures",
    "blocking_call_latency",
    "compare_loops",
    "echo_clients",
    "idle_memory",
    "idle_memory_of",
    "load_from_another_process",
    "loops_table",
    "p90_or_nan",
    "plot_blocking_call",
]
