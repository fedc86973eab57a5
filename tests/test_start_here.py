"""notebooks/00_start_here.ipynb, the landing page: its map, and the template rule it uses
(a notebook without exercises, marked so in its metadata)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from nbio_helpers.cli.notebook_tools import has_exercises, template_problems

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
START = NOTEBOOKS / "00_start_here.ipynb"


@pytest.fixture(scope="module")
def start():
    return nbformat.read(START, as_version=4)


def markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_the_landing_page_has_no_exercises_and_follows_the_template(start):
    assert not has_exercises(start)
    assert template_problems(start) == []


def test_the_map_links_every_notebook_in_order(start):
    links = re.findall(r"\]\((\d\d_\w+\.ipynb)\)", markdown(start))
    numbered = sorted(dict.fromkeys(links))
    assert [name[:2] for name in numbered] == ["01", "02", "03", "04", "05", "06"]
    for name in numbered:
        if name.startswith("06"):
            continue  # being written; its name is the one DESIGN.md gives
        assert (NOTEBOOKS / name).exists(), name
    others = {p.name for p in NOTEBOOKS.glob("0[1-9]_*.ipynb")}
    assert others <= set(numbered), f"notebooks missing from the map: {others - set(numbered)}"


def test_the_map_gives_each_notebooks_time_from_its_title_cell(start):
    text = markdown(start)
    for path in sorted(NOTEBOOKS.glob("0[1-9]_*.ipynb")):
        title = nbformat.read(path, as_version=4).cells[0].source
        minutes = re.search(r"\*\*Time\*\*:?\s*about (\d+) minutes", title)
        assert minutes, f"{path.name}: no '**Time** about N minutes'"
        row = next(line for line in text.splitlines() if f"]({path.name})" in line)
        assert f"about {minutes.group(1)} minutes" in row, (path.name, row)


def test_the_landing_page_says_what_to_do_when_a_cell_hangs_or_after_a_restart(start):
    text = markdown(start)
    for words in (
        "Interrupt",
        "Restart Kernel",
        "Run All Above Selected Cell",
        "Shift-Enter",
        "setup cell",
    ):
        assert words in text, words


# ---------------------------------------------------------------- the template rule


def test_a_checker_in_a_notebook_without_exercises_is_reported(start):
    nb = copy.deepcopy(start)
    nb.cells.insert(3, new_code_cell("check_double(double)", execution_count=None))
    assert any("a solution or checker" in p for p in template_problems(nb))


def test_without_the_metadata_the_exercises_section_is_required(start):
    nb = copy.deepcopy(start)
    del nb.metadata["nbio"]
    assert has_exercises(nb)
    assert "no '## Exercises' section" in template_problems(nb)
