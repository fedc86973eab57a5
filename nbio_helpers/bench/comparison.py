"""Deprecated: the comparison of notebook 05 moved to :mod:`nbio_helpers.measure.comparison`.

Kept so that ``from nbio_helpers.bench import compare, comparison_table, plot_comparison``
(notebook 05) keeps working until the notebook imports from :mod:`nbio_helpers.measure`::

    rows = compare(connections=1050)     # every model, the connection probe included
    print(comparison_table(rows))
    plot_comparison(rows)
"""

from __future__ import annotations

from ..measure.comparison import ComparisonRow, comparison_table, plot_comparison
from ..measure.comparison import compare as _compare

__all__ = ["compare", "comparison_table", "plot_comparison"]


def compare(models=None, *, connections: int = 1100, **settings) -> list[ComparisonRow]:
    """Deprecated alias of :func:`nbio_helpers.measure.compare`, with the connection probe
    on by default (1,100 connections), as notebook 05 calls it."""
    return _compare(models, connections=connections, **settings)
