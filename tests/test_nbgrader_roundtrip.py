"""The whole nbgrader round trip, with the real nbgrader, for every notebook.

A course folder is made in a temporary directory, with one assignment per notebook: the
instructor notebook goes into ``source/``, ``nbgrader generate_assignment`` releases them
all, and one ``nbgrader autograde`` grades the submissions of each. Three submissions of
each notebook are graded: the unsolved release (0 points), the release with the reference
solutions pasted back (full points), and the release with one typical wrong answer (that
task's points lost, the others kept). The release must also be what ``student-edition``
writes.

Two courses, one fixture each (tests/conftest.py), so that ``pytest -n`` can grade them
side by side with other tests:

* ``nbgrader_course``: the unsolved submissions. tests/test_student_edition.py checks their
  scores (0), that the release is the student edition, and that no cell but a checker
  raised in them, so they run alone (tests/run_alone.py): the notebooks assert what they
  measure;
* ``nbgrader_graded``: the solved and the wrong ones, whose scores are all that is checked.
  The checkers time and measure the learner's code with margins meant for a learner's busy
  laptop, so these need no machine to themselves.

nbgrader 0.9 needs Python 3.11+ (and JupyterLab 4.2+): skipped elsewhere, or if it is not
installed (it is in the ``test`` extra).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from kernels import ipc_folder, ipc_settings

if sys.version_info < (3, 11):
    pytest.skip("nbgrader 0.9 needs Python 3.11 or newer", allow_module_level=True)
nbgrader_api = pytest.importorskip("nbgrader.api", reason="nbgrader is not installed")


pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

CONFIG = """\
c = get_config()  # noqa: F821 (nbgrader's config loader defines it)
c.CourseDirectory.course_id = "nbio"
c.CourseDirectory.root = {root!r}
c.Execute.timeout = 180          # seconds one cell may take while grading
c.Execute.allow_errors = True    # a failed check costs its points, not the notebook
"""
# The kernels' channels on Unix sockets, not TCP ports that a test server beside them can
# take while a kernel starts (tests/kernels.py); nothing on Windows, which keeps TCP.
KERNEL_CONFIG = "c.KernelManager.{0} = {1!r}\n"

# notebook, (grade_id of the solution cell to break, its wrong source, points it is worth)
WRONG = {
    "01_blocking_recv": (
        "nb01-recv-exactly-timeout",
        """\
def recv_exactly_timeout(sock, n, timeout):
    sock.settimeout(timeout)
    return sock.recv(n)          # one recv(): a typical first try""",
        3,
    ),
    "02_nonblocking_recv": (
        "nb02-recv-nonblocking",
        """\
def recv_nonblocking(sock):
    return sock.recv(65536)      # BlockingIOError escapes""",
        2,
    ),
    "04_select": (
        "nb04-predict-spin",
        '''\
def predict_spin_one_client():
    return "a"''',
        1,
    ),
    "05_selectors_and_asyncio": (
        "nb05-choose-model",
        """\
def answers():
    return {"game_loop": "threads", "chat_server": "selectors", "legacy_driver": "threads"}""",
        2,
    ),
    "06_event_loop_from_scratch": (
        "nb06-framer",
        """\
class MyFramer:
    def __init__(self, max_line=1024):
        self.max_line = max_line
        self.buffer = bytearray()

    def feed(self, data):
        return data.split(b"\\n")[:-1]     # each recv() alone: a line cut in two is lost""",
        3,
    ),
    "03_polling_loop": (
        "accept_new",
        '''\
def accept_new(listener):
    """Accept every waiting client; return their sockets, ready to be polled."""
    new = []
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return new
        new.append(sock)         # left blocking: one quiet client freezes the loop''',
        3,
    ),
}


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs `alembic` (its database migrations) by name, from PATH: as in an
    # activated virtual environment, this Python's scripts directory comes first.
    scripts = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def cells_by_id(nb) -> dict:
    return {
        c.metadata["nbgrader"]["grade_id"]: c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id")
    }


def points_of(nb) -> float:
    return sum(
        c.metadata["nbgrader"].get("points", 0)
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    )


def submit(course: Path, student: str, assignment: str, name: str, nb) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{name}.ipynb")


STUDENTS = ("unsolved", "solved", "wrong")


def round_trip(course: Path, names: list[str], students=STUDENTS) -> dict:
    """One course with one assignment per notebook in ``names``: release each, then grade
    the ``students``' submissions (of :data:`STUDENTS`) of every assignment in one
    ``nbgrader autograde`` (one gradebook, one nbgrader start, as a course of several
    assignments is graded). Returns, per notebook, those submissions' ``scores``, the points
    in all, those of the broken task, the release, and the path of the unsolved submission
    as nbgrader executed it (``unsolved_run``).
    """
    sockets = ipc_folder()
    config = CONFIG.format(root=str(course))
    config += "".join(KERNEL_CONFIG.format(*item) for item in ipc_settings(sockets.name).items())
    (course / "nbgrader_config.py").write_text(config)
    results = {}
    for name in names:
        assignment = name.split("_")[0]
        (course / "source" / assignment).mkdir(parents=True)
        shutil.copy(NOTEBOOKS / f"{name}.ipynb", course / "source" / assignment)
    nbgrader(course, "generate_assignment", "*", "--create", "--force")
    for name in names:
        assignment = name.split("_")[0]
        instructor = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        release = nbformat.read(course / "release" / assignment / f"{name}.ipynb", as_version=4)
        solved = nbformat.from_dict(release)
        answers = cells_by_id(instructor)
        for gid, cell in cells_by_id(solved).items():
            if cell.metadata["nbgrader"].get("solution"):
                cell.source = answers[gid].source  # the markers are comments: harmless
        wrong = nbformat.from_dict(solved)
        broken, source, worth = WRONG[name]
        cells_by_id(wrong)[broken].source = source
        submissions = {"unsolved": release, "solved": solved, "wrong": wrong}
        for student in students:
            submit(course, student, assignment, name, submissions[student])
        results[name] = {
            "total": points_of(instructor),
            "worth": worth,
            "release": release,
            "unsolved_run": course / "autograded" / "unsolved" / assignment / f"{name}.ipynb",
        }
    with sockets:
        graded = nbgrader(course, "autograde", "*", "--create", "--force")
    if os.name == "posix":  # the kernels took no TCP port (ipykernel warns when they do)
        assert "running over TCP" not in graded.stdout + graded.stderr

    with nbgrader_api.Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name, result in results.items():
            assignment = name.split("_")[0]
            result["scores"] = {
                student: gb.find_submission_notebook(name, assignment, student).score
                for student in students
            }
    return results


@pytest.mark.parametrize("name", list(WRONG))
def test_nbgrader_scores_right_and_wrong_answers(nbgrader_graded, name):
    result = nbgrader_graded[name]  # conftest: the solved and wrong submissions' course, once
    scores, total = result["scores"], result["total"]
    assert scores["solved"] == total, scores
    assert scores["wrong"] == total - result["worth"], scores


if __name__ == "__main__":  # pragma: no cover - prints the scores for the report
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for notebook, result in round_trip(Path(tmp), sys.argv[1:] or list(WRONG)).items():
            print(notebook, "total", result["total"], result["scores"])
