"""The series as a whole: its order, the links between notebooks, and their metadata.

Every notebook ends with a navigation cell (a markdown cell after ``finish()``) that links the
previous notebook, the map (``00_start_here``) and the next one, each by its title; and its
metadata carries its title, authors and licence (the text of the notebooks is CC BY 4.0, see
``LICENSE-notebooks``). Both are derived from the notebooks themselves, so a maintainer who
adds or renames a notebook runs::

    python -c "from nbio_helpers.cli.series import update_series; update_series('notebooks')"

and ``tests/test_notebook_template.py`` checks that the result is what is committed
(:func:`series_problems`).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

AUTHORS = [{"name": "The nbio authors"}]
LICENSE = "CC-BY-4.0"
"""SPDX identifier of the notebooks' licence (the code is MIT)."""
NAV_MARK = "<!-- nbio: navigation -->"
"""First line of a navigation cell: how it is found again to be replaced."""

_TITLE = re.compile(r"^#\s+(\d\d\s+·\s+.+?)\s*$", re.MULTILINE)


def notebooks(folder) -> list[Path]:
    """The notebooks of the series in ``folder``, in order (``NN_name.ipynb``)."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def title_of(nb) -> str:
    """``"NN · Title"`` from the notebook's title cell (its first line ``# NN · Title``)."""
    match = _TITLE.search(nb.cells[0].source) if nb.cells else None
    if not match:
        raise ValueError("the first cell has no '# NN · Title' line")
    return match.group(1)


def navigation_text(titles: dict[str, str], name: str) -> str:
    """The navigation cell of notebook ``name``, given every notebook's title (in order)."""
    names = list(titles)
    at = names.index(name)
    parts = []
    if at > 0:
        before = names[at - 1]
        parts.append(f"← previous: [{titles[before]}]({before})")
    if at > 0 and names[0] != names[at - 1]:
        parts.append(f"the map: [{titles[names[0]]}]({names[0]})")
    if at + 1 < len(names):
        after = names[at + 1]
        parts.append(f"next: [{titles[after]}]({after}) →")
    else:
        parts.append("the end of the series")
    return NAV_MARK + "\n" + " · ".join(parts)


def is_navigation_cell(cell) -> bool:
    """True for a cell written by :func:`update_series`."""
    return cell.cell_type == "markdown" and cell.source.startswith(NAV_MARK)


def expected_metadata(nb) -> dict:
    """The metadata keys every notebook carries, with the values this one must have."""
    return {"title": title_of(nb), "authors": AUTHORS, "license": LICENSE}


def series_problems(folder) -> list[str]:
    """Every notebook in ``folder`` whose navigation cell or metadata is not what
    :func:`update_series` would write; ``[]`` if none."""
    paths = notebooks(folder)
    read = {p.name: nbformat.read(p, as_version=4) for p in paths}
    titles = {name: title_of(nb) for name, nb in read.items()}
    problems = []
    for name, nb in read.items():
        last = nb.cells[-1] if nb.cells else None
        if last is None or not is_navigation_cell(last):
            problems.append(f"{name}: the last cell is not the navigation cell")
        elif last.source != navigation_text(titles, name):
            problems.append(
                f"{name}: the navigation cell does not link its neighbours by their titles"
            )
        for key, value in expected_metadata(nb).items():
            if nb.metadata.get(key) != value:
                problems.append(
                    f"{name}: metadata {key!r} is {nb.metadata.get(key)!r}, not {value!r}"
                )
    return problems


def update_series(folder) -> list[Path]:
    """Write every notebook's navigation cell (last) and metadata; return those changed.

    Nothing else is touched: no output changes, so nothing needs executing again."""
    paths = notebooks(folder)
    read = {p: nbformat.read(p, as_version=4) for p in paths}
    titles = {p.name: title_of(nb) for p, nb in read.items()}
    changed = []
    for path, nb in read.items():
        before = nbformat.writes(nb)
        old = [c for c in nb.cells if is_navigation_cell(c)]
        nav = old[0] if old else nbformat.v4.new_markdown_cell()  # keeps its cell id
        nav.source = navigation_text(titles, path.name)
        nb.cells = [c for c in nb.cells if not is_navigation_cell(c)] + [nav]
        nb.metadata.update(expected_metadata(nb))
        if nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


__all__ = [
    "AUTHORS",
    "LICENSE",
    "NAV_MARK",
    "expected_metadata",
    "is_navigation_cell",
    "navigation_text",
    "notebooks",
    "series_problems",
    "title_of",
    "update_series",
]
