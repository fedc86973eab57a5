"""The one definition of every summary figure: percentiles, the tail rule, the spread of trials.

Every latency and CPU figure of the series (notebooks, ``bench``, ``load``) is summarised
here, so that one word means one thing everywhere::

    percentile([3, 1, 2, 5, 4], 0.5)         # 3: nearest rank
    tail(latencies)                          # Tail(name='p90', value=0.0021) with 100..999
    Spread.of([0.9, 1.1, 1.0], pooled=1.0)   # Spread(value=1.0, low=0.9, high=1.1, ...)

**Percentile** (nearest rank): the ``q``-percentile of ``n`` samples is the smallest sample
with at least ``q * n`` samples at or below it, i.e. ``sorted(samples)[ceil(q * n) - 1]``.
It is always one of the samples (no interpolation).

**The tail rule**: a percentile is only named when at least :data:`BEYOND` (10) samples lie
beyond it; otherwise it is too close to the maximum to mean anything (with 100 samples the
nearest-rank p99 *is* the maximum). So

* p99 with 1,000 samples or more,
* p90 with 100 to 999 samples,
* the maximum, named ``"max"``, with fewer than 100.

:func:`tail` applies the rule; nothing in the package prints "p99" any other way.

**Spread of repeated trials**: a figure measured ``k`` times is reported as one value (the
pooled measurement: every sample together, or total over total) and the lowest and highest
of the ``k`` trials (:class:`Spread`). The pooled value always lies within that range when
it is a median or a ratio of totals.

This module imports nothing from the package: the client process and the clients use it too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["BEYOND", "Spread", "Tail", "percentile", "tail", "tail_name"]

BEYOND = 10
"""How many samples must lie beyond a percentile for it to be named (see the tail rule)."""


def percentile(samples: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with ``fraction`` of them at or below it.

    Parameters
    ----------
    samples:
        Numbers, in any order.
    fraction:
        Between 0 and 1 (0.5 = median, 0.9 = p90). ``fraction = 0`` gives the minimum,
        ``1`` the maximum.

    Returns
    -------
    float
        One of the samples; ``nan`` if there are none.

    >>> percentile(range(1, 41), 0.9)       # 40 samples: the 36th smallest
    36
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, not {fraction!r}")
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def tail_name(count: int) -> str:
    """The tail figure that ``count`` samples can support: ``"p99"``, ``"p90"`` or ``"max"``."""
    if count >= BEYOND * 100:
        return "p99"
    if count >= BEYOND * 10:
        return "p90"
    return "max"


class Tail(NamedTuple):
    """The slow end of a distribution, under its true name (see :func:`tail`)."""

    name: str
    """``"p99"``, ``"p90"`` or ``"max"``."""
    value: float
    """The figure itself (``nan`` without samples)."""

    def __str__(self) -> str:
        return f"{self.name} {self.value:g}"


def tail(samples: Iterable[float]) -> Tail:
    """The highest percentile that ``samples`` can support, by the tail rule.

    p99 with at least 1,000 samples, p90 with at least 100, else the maximum (``"max"``).

    >>> tail(range(50))
    Tail(name='max', value=49)
    >>> tail(range(100)).name
    'p90'
    """
    ordered = sorted(samples)
    name = tail_name(len(ordered))
    if not ordered:
        return Tail(name, math.nan)
    if name == "max":
        return Tail(name, ordered[-1])
    return Tail(name, percentile(ordered, 0.99 if name == "p99" else 0.90))


class Spread(NamedTuple):
    """One figure measured in repeated trials: the pooled value and the range of the trials.

    Draw ``value`` as the dot and ``low``..``high`` as the whiskers.
    """

    value: float
    """The pooled figure (all samples together, or total over total)."""
    low: float
    """The lowest trial."""
    high: float
    """The highest trial."""
    trials: tuple
    """Each trial's own figure, in the order measured."""

    @classmethod
    def of(cls, trials: Iterable[float], pooled: float | None = None) -> Spread:
        """The spread of ``trials``; ``pooled`` defaults to their median.

        NaN trials (a trial that measured nothing) are left out of the range.
        """
        trials = tuple(trials)
        finite = [t for t in trials if isinstance(t, (int, float)) and not math.isnan(t)]
        if not finite:
            return cls(math.nan if pooled is None else pooled, math.nan, math.nan, trials)
        value = statistics.median(finite) if pooled is None else pooled
        return cls(value, min(finite), max(finite), trials)

    def scaled(self, factor: float) -> Spread:
        """The same spread in other units (``spread.scaled(1e3)``: seconds to ms)."""
        return Spread(
            self.value * factor,
            self.low * factor,
            self.high * factor,
            tuple(t * factor for t in self.trials),
        )

    def __str__(self) -> str:
        return f"{self.value:.3g} ({self.low:.3g}..{self.high:.3g}, {len(self.trials)} trials)"
