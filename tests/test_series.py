"""nbio_helpers.cli.series: every notebook links its neighbours and carries its metadata."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbio_helpers.cli.series import (
    LICENSE,
    NAV_MARK,
    navigation_text,
    series_problems,
    title_of,
    update_series,
)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_the_committed_notebooks_link_each_other_and_carry_their_metadata():
    assert series_problems(NOTEBOOKS) == []


def write(folder: Path, name: str, title: str) -> Path:
    nb = new_notebook(
        cells=[
            new_markdown_cell(f"# {title}\n\n**Time** about 5 minutes."),
            new_code_cell("finish()"),
        ]
    )
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_update_writes_links_by_title_and_is_idempotent(tmp_path):
    write(tmp_path, "00_start.ipynb", "00 · Start here")
    write(tmp_path, "01_one.ipynb", "01 · One")
    write(tmp_path, "02_two.ipynb", "02 · Two")
    assert series_problems(tmp_path) != []
    assert len(update_series(tmp_path)) == 3
    assert series_problems(tmp_path) == []
    assert update_series(tmp_path) == []  # nothing changes the second time
    first = nbformat.read(tmp_path / "00_start.ipynb", as_version=4)
    middle = nbformat.read(tmp_path / "01_one.ipynb", as_version=4)
    last = nbformat.read(tmp_path / "02_two.ipynb", as_version=4)
    assert first.cells[-1].source == NAV_MARK + "\nnext: [01 · One](01_one.ipynb) →"
    assert middle.cells[-1].source == (
        NAV_MARK + "\n← previous: [00 · Start here]"
        "(00_start.ipynb) · next: [02 · Two](02_two.ipynb) →"
    )
    assert last.cells[-1].source == (
        NAV_MARK + "\n← previous: [01 · One](01_one.ipynb) · the map: [00 · Start here]"
        "(00_start.ipynb) · the end of the series"
    )
    assert middle.metadata["title"] == "01 · One" and middle.metadata["license"] == LICENSE
    assert [c.cell_type for c in middle.cells] == ["markdown", "code", "markdown"]


@pytest.mark.slow
def test_a_renamed_title_or_a_new_notebook_is_caught(tmp_path):
    for path in NOTEBOOKS.glob("0[0-2]_*.ipynb"):
        shutil.copy(path, tmp_path)
    update_series(tmp_path)
    assert series_problems(tmp_path) == []
    path = next(tmp_path.glob("01_*.ipynb"))
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace(title_of(nb), "01 · Renamed", 1)
    nbformat.write(nb, path)
    problems = series_problems(tmp_path)
    assert any("00_" in p and "navigation" in p for p in problems), problems
    assert any("01_" in p and "'title'" in p for p in problems), problems
    write(tmp_path, "03_new.ipynb", "03 · New")
    assert any("02_" in p and "navigation" in p for p in series_problems(tmp_path))


def test_navigation_text_names_the_end():
    titles = {"05_a.ipynb": "05 · A", "06_b.ipynb": "06 · B"}
    assert navigation_text(titles, "06_b.ipynb").endswith("the end of the series")
