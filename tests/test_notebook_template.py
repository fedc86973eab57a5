"""Every notebook follows the series' template; the template checker itself catches violations.

The rules live in :func:`nbio_helpers.cli.notebook_tools.template_problems`. A sample notebook,
built and executed here, follows every rule; each mutation of it breaks exactly one rule and
must be reported, so this test can fail.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbio_helpers import running_servers, start_server
from nbio_helpers.cli.notebook_tools import execute_notebook, template_problems, unexpected_errors
from nbio_helpers.ui.notebook import finish, setup_notebook, show_source

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

CHECKER_DEFINITION = '''\
from nbio_helpers.exercises import NotYet, call_learner, checker

@checker
def check_double(fn):
    if call_learner(fn, 4, timeout=2) != 8:
        raise NotYet("double(4) is not 8", hint="multiply by 2")
    return "double(4) == 8"'''

SOLUTION = """\
def double(x):
    ### BEGIN SOLUTION
    return x * 2
    ### END SOLUTION"""


def nbgrader(grade_id: str) -> dict:
    return {
        "nbgrader": {
            "grade": False,
            "grade_id": grade_id,
            "locked": False,
            "schema_version": 3,
            "solution": True,
            "task": False,
        }
    }


def graded(grade_id: str, points: int = 1) -> dict:
    return {
        "nbgrader": {
            "grade": True,
            "grade_id": grade_id,
            "locked": True,
            "points": points,
            "schema_version": 3,
            "solution": False,
            "task": False,
        }
    }


def sample_notebook():
    """A small notebook that follows the template (not yet executed)."""
    return new_notebook(
        cells=[
            new_markdown_cell(
                "# 00 · A sample\n\n**Objectives**: follow the template.\n\n"
                "**Prerequisites**: none.\n\n**Time**: 1 minute."
            ),
            new_code_cell(
                "from nbio_helpers.ui.notebook import setup_notebook, show_source, finish\n"
                "setup_notebook()"
            ),
            new_markdown_cell("## A section\n\nConcept, then a live demo."),
            new_code_cell("print('hello')"),
            new_code_cell(
                "raise ValueError('on purpose')", metadata={"tags": ["raises-exception"]}
            ),
            new_code_cell(
                "print('took 0.123 s, timeout 2 s')", metadata={"tags": ["nbval-ignore-output"]}
            ),
            new_code_cell("show_source(setup_notebook)"),
            new_code_cell(CHECKER_DEFINITION),
            new_markdown_cell("## Exercises\n\nWrite `double(x)`."),
            new_code_cell(SOLUTION, metadata=nbgrader("double")),
            new_code_cell("check_double(double)", metadata=graded("double-check", 2)),
            new_markdown_cell(
                "Why? <!-- BEGIN SOLUTION -->Because.<!-- END SOLUTION -->",
                metadata=nbgrader("why"),
            ),
            new_markdown_cell("## Key points\n\n- one\n- two"),
            new_code_cell("finish()"),
        ],
        metadata={"kernelspec": dict(KERNELSPEC)},
    )


@pytest.fixture(scope="module")
def executed_sample(tmp_path_factory):
    nb = execute_notebook(sample_notebook(), tmp_path_factory.mktemp("sample"), timeout=60)
    assert unexpected_errors(nb) == []
    return nb


# ---------------------------------------------------------------- the real notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_follows_the_template(path):
    nb = nbformat.read(path, as_version=4)
    problems = template_problems(nb)
    assert not problems, f"{path.name} breaks the template:\n" + "\n".join(problems)
    assert nb.metadata.kernelspec.display_name == KERNELSPEC["display_name"]


# ---------------------------------------------------------------- the checker itself
@pytest.mark.slow
def test_the_executed_sample_follows_the_template(executed_sample):
    assert template_problems(executed_sample) == []
    last = executed_sample.cells[-1].outputs[0]["text"]
    assert last == "servers running: none\nnbio threads alive: 0\n"


def stream(text):
    return new_output("stream", name="stdout", text=text)


def add_output(index, output):
    def mutate(nb):
        nb.cells[index].outputs.append(output)

    return mutate


def set_source(index, source):
    def mutate(nb):
        nb.cells[index].source = source

    return mutate


def drop_tag(index, tag):
    def mutate(nb):
        nb.cells[index].metadata["tags"].remove(tag)

    return mutate


def swap_counts(nb):
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[1].execution_count, code[2].execution_count = (
        code[2].execution_count,
        code[1].execution_count,
    )


def unexecute_last(nb):
    nb.cells[-1].execution_count = None
    nb.cells[-1].outputs = []


def tag_raises(nb):
    nb.cells[3].metadata["tags"] = ["raises-exception"]


def wrong_kernel(nb):
    nb.metadata.kernelspec.name = "python2"


def no_nbgrader(nb):
    del nb.cells[9].metadata["nbgrader"]


def same_grade_id(nb):
    nb.cells[11].metadata["nbgrader"]["grade_id"] = "double"


def no_checker(nb):
    nb.cells[10].source = "double(4)"


def ungraded_checker(nb):
    del nb.cells[10].metadata["nbgrader"]


def unlocked_checker(nb):
    nb.cells[10].metadata["nbgrader"]["locked"] = False


def no_points(nb):
    del nb.cells[10].metadata["nbgrader"]["points"]


def checker_shows_true(nb):
    nb.cells[10].outputs.append(
        new_output("execute_result", execution_count=1, data={"text/plain": "True"})
    )


def checker_reuses_an_id(nb):
    nb.cells[10].metadata["nbgrader"]["grade_id"] = "double"


def checker_schema(nb):
    nb.cells[10].metadata["nbgrader"]["schema_version"] = 1


def key_points_first(nb):
    nb.cells[8], nb.cells[12] = nb.cells[12], nb.cells[8]


def png():
    return new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})


VIOLATIONS = {
    "title": (
        set_source(0, "# A sample\n\n**Objectives** **Prerequisites** **Time**"),
        "does not start with '# NN · Title'",
    ),
    "objectives": (
        set_source(0, "# 00 · A sample\n\n**Prerequisites**: none. **Time**: 1."),
        "does not name the Objectives",
    ),
    "setup": (
        set_source(1, "from nbio_helpers.ui.notebook import finish"),
        "does not call setup_notebook()",
    ),
    "exercises": (set_source(8, "## Practice"), "no '## Exercises' section"),
    "key points": (set_source(12, "## Summary"), "no '## Key points' section"),
    "section order": (key_points_first, "'## Key points' comes before '## Exercises'"),
    "finish": (set_source(13, "print('bye')"), "does not call finish()"),
    "finish output": (unexecute_last, "did not print that nothing is left"),
    "order": (swap_counts, "execution counts are not 1.."),
    "error": (drop_tag(4, "raises-exception"), "error output but no 'raises-exception' tag"),
    "raises nothing": (tag_raises, "tagged 'raises-exception' but raised nothing"),
    "port": (add_output(3, stream("listening on 127.0.0.1:45678\n")), "a port number"),
    "port tuple": (add_output(3, stream("('127.0.0.1', 45678)\n")), "a port number"),
    "fd": (add_output(3, stream("<socket.socket fd=57, family=2>\n")), "a file descriptor number"),
    "address": (add_output(3, stream("<object at 0x7f3a2b1c9d80>\n")), "a 0x address"),
    "timing s": (add_output(3, stream("took 0.123 s\n")), "a timing"),
    "timing ms": (add_output(3, stream("latency: 12 ms\n")), "a timing"),
    "timing in a result": (
        add_output(
            3, new_output("execute_result", execution_count=3, data={"text/plain": "'1.5 ms'"})
        ),
        "a timing",
    ),
    "plot": (add_output(3, png()), "a plot in a cell not tagged nbval-ignore-output"),
    "trailing semicolon": (set_source(3, "print('hello');"), "trailing ';'"),
    "kernelspec": (wrong_kernel, "kernelspec name is 'python2'"),
    "nbgrader": (no_nbgrader, "solution cell without nbgrader metadata"),
    "grade_id": (same_grade_id, "grade_id 'double' already used"),
    "checker": (no_checker, "exercise not followed by a checker cell"),
    "graded checker": (ungraded_checker, "not a locked, graded nbgrader test cell"),
    "locked checker": (unlocked_checker, "needs locked: True"),
    "points": (no_points, "needs points > 0"),
    "checker result": (checker_shows_true, "the checker cell shows a result"),
    "checker grade_id": (checker_reuses_an_id, "grade_id 'double' already used"),
    "checker schema": (checker_schema, "needs schema_version: 3"),
}


@pytest.mark.parametrize("name", list(VIOLATIONS))
def test_each_violation_is_reported(executed_sample, name):
    mutate, expected = VIOLATIONS[name]
    nb = copy.deepcopy(executed_sample)
    mutate(nb)
    problems = template_problems(nb)
    assert any(expected in p for p in problems), problems


def test_settings_and_ignored_cells_are_not_volatile(executed_sample):
    nb = copy.deepcopy(executed_sample)
    nb.cells[3].outputs.append(stream("a timeout of 2 s, 5 clients, errno 11, 100 bytes\n"))
    nb.cells[5].outputs.append(stream("127.0.0.1:45678 fd=3 0xdeadbeef 0.5 s\n"))  # ignored cell
    assert template_problems(nb) == []


# ---------------------------------------------------------------- notebook.py
def test_setup_notebook_sets_style_and_prints_nothing(capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    setup_notebook(figsize=(7, 2.5))
    assert tuple(plt.rcParams["figure.figsize"]) == (7, 2.5)
    assert plt.rcParams["axes.spines.top"] is False
    assert capsys.readouterr().out == ""
    setup_notebook()
    assert tuple(plt.rcParams["figure.figsize"]) == (9.0, 3.2)


def test_show_source_is_the_real_code():
    code = show_source(setup_notebook)
    assert code.data.startswith("def setup_notebook(")
    assert "plt.rcParams.update" in code.data
    assert 'class="highlight"' in code._repr_html_() or "highlight" in code._repr_html_()

    class Holder:
        def method(self):
            return 1

    assert show_source(Holder.method).data.startswith("def method(self):")  # dedented


def test_finish_stops_everything_and_says_so(capsys):
    server = start_server("threads", name="template-finish")
    assert server.running
    finish()
    assert capsys.readouterr().out == "servers running: none\nnbio threads alive: 0\n"
    assert not server.running and not running_servers()


def test_finish_fails_loudly_if_an_nbio_thread_survives(capsys):
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, args=(30,), name="nbio-stuck", daemon=True)
    stuck.start()
    try:
        with pytest.raises(AssertionError, match="nbio-stuck"):
            finish(timeout=0.1)
        assert "nbio threads alive: 0" not in capsys.readouterr().out
    finally:
        release.set()
        stuck.join(5)


# ---------------------------------------------------------------- execute-notebooks
def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "nbio_helpers", "execute-notebooks", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_execute_notebooks_rewrites_a_good_notebook_in_place(tmp_path):
    path = tmp_path / "00_sample.ipynb"
    nbformat.write(sample_notebook(), path)
    done = run_cli(str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{path}:" in done.stdout and " s" in done.stdout  # time per notebook
    nb = nbformat.read(path, as_version=4)
    problems = template_problems(nb)
    assert not problems, f"{path.name} breaks the template:\n" + "\n".join(problems)
    assert "execution" not in nb.cells[3].metadata  # no timing metadata


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_execute_notebooks_fails_on_an_unexpected_error(tmp_path):
    path = tmp_path / "00_broken.ipynb"
    nb = sample_notebook()
    nb.cells[3].source = "1 / 0"
    nbformat.write(nb, path)
    before = path.read_text()
    done = run_cli(str(tmp_path))
    assert done.returncode == 1
    assert "ZeroDivisionError" in done.stdout and "not rewritten" in done.stdout
    assert path.read_text() == before


def test_consecutive_prints_are_stored_as_one_output_per_stream():
    from nbio_helpers.cli.notebook_tools import coalesce_streams

    out = nbformat.v4.new_output
    cell = nbformat.v4.new_code_cell("print('a'); print('b')")
    cell.outputs = [
        out("stream", name="stdout", text="the next recv() returned:"),
        out("stream", name="stdout", text=[" b'X'\n"]),
        out("stream", name="stderr", text="warning\n"),
        out("stream", name="stdout", text="after\n"),
        out("execute_result", data={"text/plain": "1"}, execution_count=1),
        out("stream", name="stdout", text="last\n"),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    coalesce_streams(nb)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in cell.outputs] == [
        ("stream", "stdout", "the next recv() returned: b'X'\n"),
        ("stream", "stderr", "warning\n"),
        ("stream", "stdout", "after\n"),
        ("execute_result", None, None),
        ("stream", "stdout", "last\n"),
    ]
