"""What must hold on any machine, checked on the rows of :func:`~.comparison.compare`.

A busy machine changes every figure of a comparison, but not which of two is larger when the
gap is wide: busy polling never rests, a sleeping poller goes round at most once per nap, a
loop that waits in the kernel uses no CPU while nothing happens. Those relations are what
notebooks 04 and 05 assert (and ``tests/test_relations.py``), with one definition here::

    rows = compare([("polling (busy)", "polling", {"interval": 0}),
                    ("polling (10 ms sleep)", "polling", {"interval": 0.01}),
                    ("select", "select", {})], parts=("idle", "latency", "load"))
    print_relations(comparison_relations(rows, spare_cores=spare_cores()))

prints, on every OS and every machine where they hold (and then returns)::

    ✓ every echo of the load came back intact
    ✓ busy polling goes round thousands of times a second with nothing to do, and burns ...
    ✓ the sleeping poller goes round at most once per nap
    ...

The sentences depend only on which models were measured, never on the figures or the OS, so
a notebook cell that prints them has the same output everywhere; what is *checked* can depend
on the OS (``platform``) and on whether a core was free (``spare_cores``).

Nothing here compares figures that are close. In particular busy polling is **not** asserted
to answer sooner than ``select`` or ``selectors``: measured from a separate process, their
medians are a few hundredths of a millisecond apart, in either order from run to run (a
woken thread needs the scheduler; a busy loop needs a free core and pays a round over every
socket). Only "no more than 2 ms later than busy polling" is checked: no nap to wait out.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable

__all__ = [
    "EVERY_CONNECTION_MODELS",
    "FREE_CORE",
    "LATE_BY",
    "Relation",
    "comparison_relations",
    "print_relations",
    "waiting_models",
]


def waiting_models() -> tuple[str, ...]:
    """Models whose loop sleeps in the kernel (select, epoll, kqueue) until a socket is
    ready: those that declare ``waits_for_readiness``, in teaching order."""
    from nbio_helpers.models import (
        MODELS,  # at call time: importing this module loads no server code
    )

    return tuple(name for name, cls in MODELS.items() if cls.waits_for_readiness)


EVERY_CONNECTION_MODELS = ("threads", "selectors", "asyncio", "tasks")
"""Models with no limit of their own on connections (on Linux and macOS)."""

FREE_CORE = 1.2
"""Idle cores (:func:`~nbio_helpers.measure.spare_cores`) from which busy polling's CPU is
checked: with less, the scheduler, not the loop, decides its share of a core."""

LATE_BY = 0.002
"""How much later than busy polling (seconds, median) a waiting model may answer."""

IDLE_CPU = 0.05  # a loop asleep in the kernel: at most 5 % of a core while idle
IDLE_WAKEUPS = 10  # ...and fewer wake-ups a second than this
BUSY_ROUNDS = 1000  # a busy loop goes round more often than this, however loaded the machine
BUSY_CPU = 0.8  # ...and burns at least this much of a free core
SLACK = 1.1  # a sleeper's rounds per nap, at most (windows are aligned on rounds)
CEILING = 1.05  # a sleeper's echoes per client per nap, at most (trials' edges)
FD_SETSIZE = 1024  # = models.select_model.FD_SETSIZE (no import: no server code here)
WINDOWS_SELECT_LIMIT = 512  # = models.select_model.WINDOWS_SELECT_LIMIT


class Relation(tuple):
    """One relation: a pair ``(sentence, holds)``, plus :attr:`figures`, what was compared.

    ``figures`` is machine-dependent text, for the message of a failure; nothing prints it
    otherwise.
    """

    figures: str

    def __new__(cls, sentence: str, holds: bool, figures: str = ""):
        self = tuple.__new__(cls, (sentence, bool(holds)))
        self.figures = figures
        return self

    @property
    def sentence(self) -> str:
        return self[0]

    @property
    def holds(self) -> bool:
        return self[1]


def _measured(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _names(rows) -> str:
    names = [r.model for r in rows]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def comparison_relations(
    rows,
    *,
    sleeper_interval: float | None = None,
    load_clients: int = 20,
    spare_cores: float | None = None,
    platform: str = sys.platform,
) -> list[Relation]:
    """The relations that must hold on any machine, for the rows of :func:`compare`.

    Parameters
    ----------
    rows:
        :class:`~.comparison.ComparisonRow` objects (anything with their attributes). The
        models are recognised by ``row.model`` and ``row.options``, not by their labels:
        busy polling is the ``polling`` row with ``interval`` 0; the sleeping poller is the
        first ``polling`` row with ``interval`` of 1 ms or more; the waiting models are
        those of :func:`waiting_models`.
    sleeper_interval:
        The sleeping poller's nap, in seconds. Default: its row's ``interval`` option.
    load_clients:
        The concurrent clients of the ``"load"`` part (``compare(load_clients=...)``).
    spare_cores:
        Idle cores measured around the comparison (:func:`~nbio_helpers.measure.spare_cores`).
        Busy polling's CPU (at least 0.8 of a core) is checked only from :data:`FREE_CORE`;
        None = unknown: not checked. Its rounds (over 1,000 a second) are always checked.
    platform:
        The OS the rows were measured on (``sys.platform``): ``select()``'s limit is 512
        sockets on Windows, descriptor numbers below 1024 elsewhere.

    Returns
    -------
    list of :class:`Relation`, each ``(sentence, holds)``, in teaching order; one per
    relation whose figures were measured (notebook 04 measures three models and gets nine,
    notebook 05 all of them, with the connections, and gets twelve). The sentences do not
    depend on the OS or the figures; which relations appear depends only on which models and
    parts were measured. For the connections relations on Windows, keep ``connections``
    at 500 or fewer: selectors, asyncio and tasks use ``select()`` there too.
    """
    rows = list(rows)
    polling = [r for r in rows if r.model == "polling"]
    busy = next((r for r in polling if r.options.get("interval", 0) == 0), None)
    sleeper = next((r for r in polling if r.options.get("interval", 0) >= 0.001), None)
    nap = (
        sleeper_interval
        if sleeper_interval is not None
        else (sleeper.options["interval"] if sleeper is not None else None)
    )
    waiting_names = waiting_models()
    waiting = [r for r in rows if r.model in waiting_names]
    who = _names(waiting) if waiting else ""
    one = len(waiting) == 1
    s = "s" if one else ""  # "select sleeps", "select and selectors sleep"
    out: list[Relation] = []

    def relation(sentence: str, involved, figure: Callable, check: Callable) -> None:
        """Add ``sentence`` if every row ``involved`` measured ``figure``."""
        involved = list(involved)
        values = [figure(r) for r in involved]
        if not involved or not all(_measured(v) for v in values):
            if involved and any(_measured(v) for v in values):  # measured, but not for all
                out.append(Relation(sentence, False, "not measured for every model"))
            return
        holds, figures = check()
        out.append(Relation(sentence, holds, figures))

    def of(rows_, attr, fmt=str):
        return ", ".join(f"{r.label}: {fmt(getattr(r, attr))}" for r in rows_)

    loaded = [r for r in rows if _measured(r.throughput)]
    if loaded:
        bad = [r.label for r in loaded if not r.load_ok]
        out.append(
            Relation(
                "every echo of the load came back intact",
                not bad,
                "wrong or missing echoes: " + ", ".join(bad) if bad else "",
            )
        )
    if busy is not None:
        free = spare_cores is not None and spare_cores >= FREE_CORE
        relation(
            "busy polling goes round thousands of times a second with nothing to do, "
            "and burns a core where one is free",
            [busy],
            lambda r: r.idle_wakeups,
            lambda: (
                busy.idle_wakeups > BUSY_ROUNDS and (not free or busy.idle_cpu >= BUSY_CPU),
                f"{busy.idle_wakeups:,.0f} rounds/s, {busy.idle_cpu:.0%} of a core, "
                f"spare cores: {spare_cores}",
            ),
        )
    if sleeper is not None and nap is not None:  # nap is the sleeper's, or the one given
        relation(
            "the sleeping poller goes round at most once per nap",
            [sleeper],
            lambda r: r.idle_wakeups,
            lambda: (
                sleeper.idle_wakeups <= SLACK / nap,
                f"{sleeper.idle_wakeups:,.1f} rounds/s, nap {nap * 1e3:g} ms",
            ),
        )
        relation(
            "the sleeping poller answers at most one message per client per nap",
            [sleeper],
            lambda r: r.throughput,
            lambda: (
                sleeper.throughput <= CEILING * load_clients / nap,
                f"{sleeper.throughput:,.0f} msg/s, ceiling {load_clients / nap:,.0f}",
            ),
        )
    if waiting:
        relation(
            f"{who} sleep{s} until there is work (no CPU while idle)",
            waiting,
            lambda r: r.idle_cpu,
            lambda: (
                all(r.idle_cpu <= IDLE_CPU and r.idle_wakeups < IDLE_WAKEUPS for r in waiting),
                of(waiting, "idle_cpu", "{:.1%} of a core".format)
                + "; "
                + of(waiting, "idle_wakeups", "{:,.0f} wake-ups/s".format),
            ),
        )
    if busy is not None and sleeper is not None:
        relation(
            "busy polling answers sooner than the sleeping poller",
            [busy, sleeper],
            lambda r: r.median_latency,
            lambda: (
                busy.median_latency <= sleeper.median_latency,
                of([busy, sleeper], "median_latency", _ms),
            ),
        )
    if sleeper is not None and waiting:
        relation(
            f"{who} answer{s} without waiting out a nap",
            [sleeper, *waiting],
            lambda r: r.median_latency,
            lambda: (
                all(r.median_latency < sleeper.median_latency / 2 for r in waiting),
                of([sleeper, *waiting], "median_latency", _ms),
            ),
        )
        relation(
            f"{who} handle{s} more messages than the sleeping poller",
            [sleeper, *waiting],
            lambda r: r.throughput,
            lambda: (
                all(r.throughput > sleeper.throughput for r in waiting),
                of([sleeper, *waiting], "throughput", "{:,.0f} msg/s".format),
            ),
        )
    if busy is not None and waiting:
        relation(
            f"{who} answer{s} no more than {LATE_BY * 1e3:g} ms later than busy polling",
            [busy, *waiting],
            lambda r: r.median_latency,
            lambda: (
                all(r.median_latency <= busy.median_latency + LATE_BY for r in waiting),
                of([busy, *waiting], "median_latency", _ms),
            ),
        )
    out += _connection_relations(rows, platform)
    return out


def _connection_relations(rows, platform: str) -> list[Relation]:
    probed = {r.model: r for r in rows if r.tried}
    out = []
    if "blocking" in probed:
        r = probed["blocking"]
        out.append(
            Relation(
                "blocking serves one client at a time",
                r.max_connections == 1,
                f"{r.max_connections}/{r.tried}",
            )
        )
    unlimited = [probed[m] for m in EVERY_CONNECTION_MODELS if m in probed]
    if unlimited:
        names = _names(unlimited)
        out.append(
            Relation(
                f"{names} serve{'s' if len(unlimited) == 1 else ''} every connection",
                all(r.max_connections == r.tried for r in unlimited),
                ", ".join(f"{r.label}: {r.max_connections}/{r.tried}" for r in unlimited),
            )
        )
    if "select" in probed:
        r = probed["select"]
        if platform == "win32":  # one list holds the listener, the waker and every client
            over = r.tried + 2 > WINDOWS_SELECT_LIMIT
            holds = 0 < r.max_connections < r.tried if over else r.max_connections == r.tried
        elif r.tried >= FD_SETSIZE:  # some descriptor numbers must reach 1024
            holds = 0 < r.max_connections < r.tried
        else:  # the process's other open files decide: some, or all
            holds = 0 < r.max_connections <= r.tried
        out.append(
            Relation(
                "select serves only the clients it can watch",
                holds,
                f"{r.max_connections}/{r.tried} on {platform}",
            )
        )
    return out


def print_relations(relations: Iterable) -> None:
    """Print each relation with ✓ or ✗, then raise AssertionError naming any that failed.

    The printed lines are the sentences only (the same on every machine); the error message
    of a failure adds the figures that were compared.
    """
    relations = list(relations)
    for relation in relations:
        sentence, holds = relation
        print("✓" if holds else "✗", sentence)
    failed = [r for r in relations if not r[1]]
    if failed:
        details = "; ".join(
            f"{r[0]} ({r.figures})" if getattr(r, "figures", "") else r[0] for r in failed
        )
        raise AssertionError("does not hold here: " + details)
