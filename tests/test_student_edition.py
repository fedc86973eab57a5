"""The student edition: solutions gone, outputs cleared, and every checker fails cleanly.

Each notebook of notebooks/ (and a built-in sample, so this runs before any notebook exists)
is written to a temporary folder and executed in a fresh kernel: every checker cell must
fail with its verdict (a NotYetError, the "❌ Not yet" line: nbgrader scores it 0), none
says "✅ Well done", no other cell raises (an answer stub is a function: defining it raises
nothing), no cell may hang, and the last cell must still show that nothing is left running.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import sys

import nbformat
import pytest
from test_notebook_template import NOTEBOOKS, NOTEBOOKS_DIR, sample_notebook

from nbio_helpers.cli.notebook_tools import execute_notebook, is_checker_cell, output_texts
from nbio_helpers.cli.student import (
    ANSWER_HERE,
    InvalidNotebookError,
    SolutionMarkerError,
    strip_code_solutions,
    strip_hidden_tests,
    strip_markdown_solutions,
    student_notebook,
    write_student_edition,
)

CELL_TIMEOUT = 30  # seconds; a student notebook's cell must never hang


# ---------------------------------------------------------------- the transformation
def test_code_solution_becomes_a_stub_at_its_indentation():
    source = (
        "def f(sock):\n"
        "    data = b''\n"
        "    ### BEGIN SOLUTION\n"
        "    while len(data) < 5:\n"
        "        data += sock.recv(5)\n"
        "    ### END SOLUTION\n"
        "    return data\n"
    )
    assert strip_code_solutions(source) == (
        "def f(sock):\n"
        "    data = b''\n"
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError()\n"
        "    return data\n"
    )


def test_several_regions_and_a_region_at_the_end():
    source = (
        "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n"
        "def g():\n  ### BEGIN SOLUTION\n  return 3\n  ### END SOLUTION"
    )
    assert strip_code_solutions(source) == (
        "# YOUR CODE HERE\nraise NotImplementedError()\nb = 2\n"
        "def g():\n  # YOUR CODE HERE\n  raise NotImplementedError()"
    )


def test_hidden_tests_are_removed():
    source = "check_x(f)\n### BEGIN HIDDEN TESTS\ncheck_x(f, strict=True)\n### END HIDDEN TESTS\n"
    assert strip_hidden_tests(source) == "check_x(f)\n"
    with pytest.raises(SolutionMarkerError):
        strip_hidden_tests("### BEGIN HIDDEN TESTS\nx\n")


def test_unbalanced_markers_are_refused():
    with pytest.raises(SolutionMarkerError):
        strip_code_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(SolutionMarkerError):
        strip_markdown_solutions("<!-- BEGIN SOLUTION -->secret")


def test_markdown_solutions():
    assert (
        strip_markdown_solutions(
            "Why?\n\n<!-- BEGIN SOLUTION -->\nBecause\nof this.\n<!-- END SOLUTION -->\n"
        )
        == f"Why?\n\n{ANSWER_HERE}\n"
    )
    assert (
        strip_markdown_solutions("Q\n### BEGIN SOLUTION\nA\n### END SOLUTION\nmore")
        == f"Q\n{ANSWER_HERE}\nmore"
    )


def test_outputs_counts_and_widget_state_are_cleared():
    nb = sample_notebook()
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    nb.cells[3].execution_count = 3
    nb.cells[3].metadata["execution"] = {"iopub.status.idle": "2024-01-01T00:00:00Z"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    nb.cells.append(
        nbformat.v4.new_markdown_cell(
            "whole answer",
            metadata={"nbgrader": {"solution": True, "grade_id": "whole", "schema_version": 3}},
        )
    )
    student = student_notebook(nb)
    assert all(
        not c.outputs and c.execution_count is None for c in student.cells if c.cell_type == "code"
    )
    assert "execution" not in student.cells[3].metadata
    assert "widgets" not in student.metadata
    assert student.cells[-1].source == ANSWER_HERE
    assert nb.cells[3].outputs  # the instructor's notebook is not modified


def student_edition(*args: str) -> subprocess.CompletedProcess:
    """``python -m nbio_helpers student-edition ARGS...``, finished (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "nbio_helpers", "student-edition", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_write_into_the_source_folder(tmp_path):
    nbformat.write(sample_notebook(), tmp_path / "00_sample.ipynb")
    for target in (tmp_path, tmp_path / "student", tmp_path / "." / "x" / ".."):
        with pytest.raises(ValueError, match="refusing"):
            write_student_edition(tmp_path, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00_sample.ipynb"]


def test_a_non_empty_output_folder_needs_force(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    nbformat.write(sample_notebook(), source / "00_sample.ipynb")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        write_student_edition(source, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert [p.name for p in write_student_edition(source, out, force=True)] == ["00_sample.ipynb"]
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
@pytest.mark.parametrize("content", ['{"cells": 3}', "[1]", "not json", '{"nbformat": 4}'])
def test_an_invalid_source_notebook_is_named(tmp_path, content):
    source = tmp_path / "src"
    source.mkdir()
    nbformat.write(sample_notebook(), source / "00_good.ipynb")
    (source / "01_bad.ipynb").write_text(content)
    with pytest.raises(InvalidNotebookError, match=r"01_bad\.ipynb is not a valid notebook"):
        write_student_edition(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
    done = student_edition(str(tmp_path / "out"), "--source", str(source))
    assert done.returncode == 1
    assert "01_bad.ipynb is not a valid notebook" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_notebook_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_student_edition(tmp_path / "empty", tmp_path / "out")


@pytest.mark.slow
def test_command_line(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    nbformat.write(sample_notebook(), source / "00_sample.ipynb")
    done = student_edition(str(tmp_path / "out"), "--source", str(source))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "00_sample.ipynb").exists()
    assert "1 student notebook(s)" in done.stdout
    refused = student_edition(str(source), "--source", str(source))
    assert refused.returncode == 1 and "refusing" in refused.stderr
    again = student_edition(str(tmp_path / "out"), "--source", str(source))
    assert again.returncode == 1 and "--force" in again.stderr and "Traceback" not in again.stderr
    forced = student_edition(str(tmp_path / "out"), "--source", str(source), "--force")
    assert forced.returncode == 0, forced.stderr


# ---------------------------------------------------------------- every notebook, executed
SAMPLE = "sample"


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    """{notebook name: (instructor nb, student nb path)} for notebooks/ and the sample."""
    base = tmp_path_factory.mktemp("student")
    sample_src = base / "sample_src"
    sample_src.mkdir()
    nbformat.write(sample_notebook(), sample_src / "00_sample.ipynb")
    pairs = {
        SAMPLE: (
            sample_src / "00_sample.ipynb",
            write_student_edition(sample_src, base / "sample_out")[0],
        )
    }
    if NOTEBOOKS:
        for path in write_student_edition(NOTEBOOKS_DIR, base / "out"):
            pairs[path.name] = (NOTEBOOKS_DIR / path.name, path)
    return pairs


def cell_seconds(cell) -> float:
    """How long a cell ran, from the timestamps nbclient records in its metadata."""
    times = cell.metadata["execution"]
    start, end = (
        datetime.datetime.fromisoformat(times[key].replace("Z", "+00:00"))
        for key in ("iopub.execute_input", "shell.execute_reply")
    )
    return (end - start).total_seconds()


def solution_bodies(nb) -> list[str]:
    """The text inside each solution region of a notebook (markers excluded)."""
    regions = re.compile(
        r"<!--\s*BEGIN SOLUTION\s*-->(.*?)<!--\s*END SOLUTION\s*-->"
        r"|### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION",
        re.DOTALL | re.MULTILINE,
    )
    bodies = []
    for cell in nb.cells:
        for match in regions.finditer(cell.source):
            body = (match.group(1) or match.group(2) or "").strip()
            if body:
                bodies.append(body)
    return bodies


def test_solution_bodies_finds_code_and_markdown_answers():
    assert solution_bodies(sample_notebook()) == ["return x * 2", "Because."]


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first one may wait for nbgrader_course (all the notebooks)
@pytest.mark.parametrize("name", [SAMPLE] + [p.name for p in NOTEBOOKS])
def test_student_edition_checkers_fail_cleanly(editions, name, nbgrader_course):
    instructor_path, student_path = editions[name]
    instructor = nbformat.read(instructor_path, as_version=4)
    student = nbformat.read(student_path, as_version=4)

    # No solution left, same cells, nothing stored from a run.
    assert len(student.cells) == len(instructor.cells)
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    bodies = solution_bodies(instructor)
    for body in bodies:
        assert body not in text, f"solution text left in the student edition: {body[:60]!r}"
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")

    # Executed: every checker says "Not yet", without raising; nothing hangs; finish() works.
    graded = (nbgrader_course or {}).get(name.removesuffix(".ipynb"))
    if graded:
        # nbgrader executed this very edition (its release has the same cells, which
        # test_nbgrader_roundtrip checks) as the unsolved submission: read that run.
        # nbgrader allows a cell 180 s; a student's cell must never take CELL_TIMEOUT.
        student = nbformat.read(graded["unsolved_run"], as_version=4)
        for cell in student.cells:
            if cell.cell_type == "code" and cell.source.strip():
                took = cell_seconds(cell)
                assert took < CELL_TIMEOUT, f"a cell took {took:.0f} s:\n{cell.source}"
    else:
        execute_notebook(
            student,
            NOTEBOOKS_DIR if NOTEBOOKS_DIR.is_dir() else student_path.parent,
            timeout=CELL_TIMEOUT,
        )
    checkers = [c for c in student.cells if is_checker_cell(c)]
    if bodies and any("### BEGIN SOLUTION" in c.source for c in instructor.cells):
        assert checkers, "exercises but no checker cell"
    for cell in checkers:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors and errors[0].ename == "NotYetError", (
            f"checker did not fail on the stub:\n{cell.source}\n{cell.outputs}"
        )
        shown = "\n".join(errors[0].traceback)
        assert "❌ Not yet" in shown and "Traceback" not in shown, shown  # the verdict only
        assert not any(o.output_type == "execute_result" for o in cell.outputs)
    others = [
        c
        for c in student.cells
        if c.cell_type == "code"
        and c not in checkers
        and "raises-exception" not in c.metadata.get("tags", [])
    ]
    for cell in others:
        assert not any(o.output_type == "error" for o in cell.outputs), (
            f"a cell that is not a checker raised:\n{cell.source}\n{cell.outputs}"
        )
    for cell in others:
        if "requires_exercise(" in cell.source:  # a demo cell calling the learner's code
            printed = "".join(t for o in cell.outputs for t in output_texts(o))
            assert "first, then run this cell again" in printed, printed
    everything = "".join(
        t
        for c in student.cells
        if c.cell_type == "code"
        for o in c.outputs
        for t in output_texts(o)
    )
    assert "✅ Well done" not in everything
    last = [c for c in student.cells if c.cell_type == "code"][-1]
    assert "servers running: none" in "".join(t for o in last.outputs for t in output_texts(o))


@pytest.mark.slow
@pytest.mark.timeout(900)  # may wait for nbgrader_course (all the notebooks)
@pytest.mark.parametrize(
    "name", [p.stem for p in NOTEBOOKS if "### BEGIN SOLUTION" in p.read_text(encoding="utf-8")]
)
def test_nbgrader_scores_an_unsolved_release_zero_and_releases_the_student_edition(
    nbgrader_course, name
):
    if nbgrader_course is None:
        pytest.skip("nbgrader 0.9 needs Python 3.11 or newer, and the test extra")
    assert name in nbgrader_course, f"{name} has exercises: add it to test_nbgrader_roundtrip.WRONG"
    result = nbgrader_course[name]  # conftest: the unsolved submissions' course, once
    assert result["total"] > 0
    assert result["scores"] == {"unsolved": 0}, result["scores"]
    # nbgrader's release and the project's student edition give the same cells.
    ours = student_notebook(nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4))
    assert [c.source for c in ours.cells] == [c.source for c in result["release"].cells]
