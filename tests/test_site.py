"""The website: the student edition with the stored outputs, widgets drawn from their saved
state, alt text on every figure, and nothing fetched from the network.

The page notebooks are checked without Jupyter Book; the real build needs the ``[site]``
extra (skipped without it; CI installs it)."""

from __future__ import annotations

import html
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from nbio_helpers.cli.site import (
    ANSWER_NOTE,
    LIVE_NOTE,
    WIDGET_VIEW,
    figure_alt,
    site_notebook,
    without_answers,
)
from nbio_helpers.cli.student import student_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
pytestmark = pytest.mark.timeout(300)


def load(path):
    return nbformat.read(path, as_version=4)


def solution_lines(nb) -> set[str]:
    """Lines of solution code that the page has no other reason to show: not in the student
    edition's cells, nor in the outputs of the cells it keeps (``show_source`` of package
    code may show the same line, legitimately)."""
    student = student_notebook(nb)
    kept_outputs = [
        o
        for original, cell in zip(nb.cells, student.cells)
        if cell.cell_type == "code" and cell.source == original.source
        for o in original.get("outputs", [])
    ]
    student_text = "\n".join(
        [c.source for c in student.cells]
        + [str(o.get("text", "")) + str(o.get("data", {})) for o in kept_outputs]
    )
    found = set()
    for cell in nb.cells:
        for region in re.findall(
            r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.DOTALL
        ):
            for line in region.splitlines():
                line = line.strip()
                if len(line) > 12 and not line.startswith("#") and line not in student_text:
                    found.add(line)
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_page_notebook_keeps_outputs_but_no_solution(path):
    nb = load(path)
    page = site_notebook(nb)
    text = "\n".join(c.source for c in page.cells)
    assert "BEGIN SOLUTION" not in text
    for line in solution_lines(nb):
        assert line not in text, line
    kept = [o for c in page.cells if c.cell_type == "code" for o in c.outputs]
    assert kept, "stored outputs are kept"
    finish = [c for c in page.cells if c.cell_type == "code"][-1]
    assert "servers running: none" in "".join(o.get("text", "") for o in finish.outputs)
    for cell, original in zip(page.cells, without_answers(nb.cells)):
        if cell.cell_type == "code" and cell.source != original.source:
            assert cell.outputs == [], "a cell whose solution was removed shows no output"
        for output in cell.get("outputs", []):
            assert WIDGET_VIEW not in output.get("data", {})
            for mime in ("image/png", "image/svg+xml"):
                if mime in output.get("data", {}):
                    assert len(output.metadata[mime]["alt"]) > 10
    assert "widgets" not in page.metadata


def test_widgets_become_static_html_with_the_live_note():
    with_widgets = [p for p in NOTEBOOKS if "widgets" in load(p).metadata]
    assert with_widgets
    for path in with_widgets:
        page = site_notebook(load(path))
        statics = [
            o.data["text/html"]
            for c in page.cells
            for o in c.get("outputs", [])
            if "nbio-static-widget" in o.get("data", {}).get("text/html", "")
        ]
        assert statics, path.name
        assert all(html.escape(LIVE_NOTE) in s for s in statics)
        assert all("<script" not in s for s in statics)


def test_alt_text_comes_from_metadata_then_the_title_then_the_section():
    cell = nbformat.v4.new_code_cell("fig = plot_x(data, title='Latency by interval')")
    assert figure_alt(cell) == "Figure: Latency by interval"
    cell.metadata["nbio"] = {"alt": "Latency grows with the interval"}
    assert figure_alt(cell) == "Latency grows with the interval"
    bare = nbformat.v4.new_code_cell("plot_scaling(result)")
    assert (
        figure_alt(bare, "2. Scaling") == "Figure of section '2. Scaling', drawn by plot_scaling()"
    )


# ---------------------------------------------------------------- the real build
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if importlib.util.find_spec("jupyter_book") is None:
        pytest.skip('needs the site extra: pip install -e ".[site]"')
    from nbio_helpers.cli.site import build_site

    out = tmp_path_factory.mktemp("site") / "html"
    index = build_site(NOTEBOOKS[0].parent, out)
    return index.parent


def page_text(page: Path) -> str:
    """The visible text of a page: tags dropped, entities decoded (code spans joined)."""
    raw = re.sub(
        r"<script.*?</script>|<style.*?</style>",
        "",
        page.read_text(encoding="utf-8"),
        flags=re.DOTALL,
    )
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


@pytest.mark.slow
def test_the_site_has_a_page_per_notebook_and_opens_on_the_first(site):
    for path in NOTEBOOKS:
        assert (site / f"{path.stem}.html").exists(), path.stem
    assert "00_start_here.html" in (site / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_no_page_shows_a_solution_and_every_page_keeps_its_outputs(site):
    for path in NOTEBOOKS:
        text = page_text(site / f"{path.stem}.html")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        for line in solution_lines(load(path)):
            assert line not in text, (path.stem, line)
        assert "servers running: none" in text and "nbio threads alive: 0" in text
    assert "b'HELLO, SERVER'" in page_text(site / "00_start_here.html")


@pytest.mark.slow
def test_every_figure_has_alt_text_and_widgets_are_static(site):
    images = 0
    for page in site.glob("*.html"):
        for tag in re.findall(r"<img\b[^>]*>", page.read_text(encoding="utf-8")):
            images += 1
            alt = re.search(r'\balt="([^"]*)"', tag)
            assert alt and len(alt.group(1)) > 10 and not alt.group(1).startswith("_images/"), (
                page.name,
                tag[:200],
            )
    assert images >= 5
    assert LIVE_NOTE in page_text(site / "03_polling_loop.html")
    assert "application/vnd.jupyter.widget-view+json" not in (
        site / "03_polling_loop.html"
    ).read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_site_works_offline(site):
    for page in site.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="(https?://[^"]+)"', text)
        assert not remote, (page.name, remote)


def test_without_jupyter_book_the_command_says_what_to_install(monkeypatch, capsys, tmp_path):
    import importlib.util as util

    from nbio_helpers.cli.main import main

    real = util.find_spec
    monkeypatch.setattr(
        util, "find_spec", lambda name, *a: None if name == "jupyter_book" else real(name, *a)
    )
    assert main(["site", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("site: Jupyter Book is not installed") and '".[site]"' in err
    assert "Traceback" not in err


def test_the_site_is_never_built_inside_the_notebooks_folder(monkeypatch, capsys):
    import importlib.util as util

    from nbio_helpers.cli.main import main

    real = util.find_spec
    monkeypatch.setattr(
        util, "find_spec", lambda name, *a: object() if name == "jupyter_book" else real(name, *a)
    )
    notebooks = NOTEBOOKS[0].parent
    assert main(["site", str(notebooks / "site"), "--source", str(notebooks)]) == 1
    assert "refusing to build the site inside the notebooks folder" in capsys.readouterr().err


def test_cells_tagged_answer_stay_off_the_page_as_one_note():
    nb = load(next(p for p in NOTEBOOKS if p.name.startswith("06_")))
    answers = [c for c in nb.cells if "answer" in c.metadata.get("tags", [])]
    assert len(answers) >= 3  # one run after each of the three checkers
    page = site_notebook(nb)
    sources = [c.source for c in page.cells]
    assert not any(c.source in sources for c in answers)
    assert sources.count(ANSWER_NOTE) == 3  # a note per run, not per cell
    assert "show_source(LineFramer.feed)" not in "\n".join(sources)
