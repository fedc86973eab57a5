"""The student edition: every notebook with its solutions removed and its outputs cleared.

Command line::

    python -m nbio_helpers student-edition OUTDIR [--source notebooks]

From Python::

    write_student_edition("notebooks", "/tmp/student")     # -> [Path(...01_....ipynb), ...]

Solution regions are nbgrader's:

* in code cells, the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` become
  ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` (nbgrader's own stub, so that this
  edition and ``nbgrader generate_assignment`` give the same cells), at the indentation of
  the ``### BEGIN SOLUTION`` line (so a function body stays a valid body). Every exercise of
  the series puts its solution inside a function, so no cell raises when run: Run All goes
  on to the checker, which says "not done yet";
* the lines from ``### BEGIN HIDDEN TESTS`` to ``### END HIDDEN TESTS`` (in graded test
  cells) are removed, as nbgrader's release does;
* in markdown cells, the text from ``<!-- BEGIN SOLUTION -->`` to ``<!-- END SOLUTION -->``
  (or between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines) becomes
  ``YOUR ANSWER HERE``; a markdown cell marked as an nbgrader solution but without markers
  is replaced as a whole, as nbgrader does.

Every output and execution count is cleared, and the saved widget state is dropped. The
edition is never written into the source folder (nor below it).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

BEGIN_CODE = "### BEGIN SOLUTION"
END_CODE = "### END SOLUTION"
STUB = "raise NotImplementedError()"
"""nbgrader's ``ClearSolutions.code_stub`` for Python, after ``# YOUR CODE HERE``."""
ANSWER_HERE = "YOUR ANSWER HERE"

_CODE_REGION = re.compile(
    r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)",
    re.MULTILINE | re.DOTALL,
)
_MARKDOWN_REGIONS = (
    re.compile(r"<!--\s*BEGIN SOLUTION\s*-->.*?<!--\s*END SOLUTION\s*-->", re.DOTALL),
    re.compile(
        r"^[ \t]*### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*$",
        re.MULTILINE | re.DOTALL,
    ),
)


_HIDDEN_TESTS = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS"
    r"[^\n]*(\n|$)",
    re.MULTILINE | re.DOTALL,
)


class SolutionMarkerError(ValueError):
    """A ``BEGIN SOLUTION`` without its ``END SOLUTION`` (or the reverse)."""


def strip_code_solutions(source: str) -> str:
    """Replace each ``### BEGIN/END SOLUTION`` region of a code cell by the stub."""

    def stub(match: re.Match) -> str:
        indent = match.group(1)
        return f"{indent}# YOUR CODE HERE\n{indent}{STUB}{match.group(2)}"

    result = _CODE_REGION.sub(stub, source)
    if BEGIN_CODE in result or END_CODE in result:
        raise SolutionMarkerError("unbalanced ### BEGIN SOLUTION / ### END SOLUTION")
    return result


def strip_hidden_tests(source: str) -> str:
    """Remove each ``### BEGIN/END HIDDEN TESTS`` region of a test cell."""
    result = _HIDDEN_TESTS.sub("", source)
    if "BEGIN HIDDEN TESTS" in result or "END HIDDEN TESTS" in result:
        raise SolutionMarkerError("unbalanced ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS")
    return result


def strip_markdown_solutions(source: str) -> str:
    """Replace each solution region of a markdown cell by ``YOUR ANSWER HERE``."""
    for pattern in _MARKDOWN_REGIONS:
        source = pattern.sub(ANSWER_HERE, source)
    if "BEGIN SOLUTION" in source or "END SOLUTION" in source:
        raise SolutionMarkerError("unbalanced BEGIN SOLUTION / END SOLUTION")
    return source


def student_notebook(nb):
    """A copy of notebook ``nb`` (nbformat node) with solutions removed, outputs cleared."""
    nb = nbformat.from_dict(nb)  # a deep copy
    for index, cell in enumerate(nb.cells):
        try:
            if cell.cell_type == "code":
                cell.source = strip_hidden_tests(strip_code_solutions(cell.source))
                cell.outputs = []
                cell.execution_count = None
            elif cell.cell_type == "markdown":
                stripped = strip_markdown_solutions(cell.source)
                if stripped == cell.source and cell.metadata.get("nbgrader", {}).get("solution"):
                    stripped = ANSWER_HERE  # nbgrader: a solution cell without markers
                cell.source = stripped
        except SolutionMarkerError as exc:
            raise SolutionMarkerError(f"cell {index}: {exc}") from None
        cell.metadata.pop("execution", None)  # nbclient's timing records
    nb.metadata.pop("widgets", None)  # saved widget state: outputs, in effect
    return nb


def notebooks_in(folder: Path) -> list[Path]:
    """The notebooks of a folder, sorted by name (checkpoints excluded)."""
    return sorted(p for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))


class InvalidNotebookError(ValueError):
    """A source file that is not a readable notebook; the message names it."""


def read_notebook(path: Path):
    """Read and validate notebook ``path``; raise :class:`InvalidNotebookError` naming it."""
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises many kinds (JSON, schema, conversion) for one cause
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidNotebookError(f"{path} is not a valid notebook ({reason[:200]})") from None
    return nb


def write_student_edition(src_dir, out_dir, *, force: bool = False) -> list[Path]:
    """Write the student edition of every notebook in ``src_dir`` to ``out_dir``.

    Returns the written paths. Raises ``ValueError`` if ``out_dir`` is ``src_dir`` or inside
    it (the instructor's notebooks must never be overwritten), ``FileExistsError`` if
    ``out_dir`` is not empty (unless ``force``: then notebooks of the same name are
    replaced), ``FileNotFoundError`` if ``src_dir`` holds no notebook,
    :class:`InvalidNotebookError` naming a source file that is not a notebook, and
    :class:`SolutionMarkerError` for unbalanced markers (naming notebook and cell).
    Nothing is written unless every notebook converts.
    """
    src = Path(src_dir).resolve()
    out = Path(out_dir).resolve()
    if out == src or src in out.parents:
        raise ValueError(
            f"refusing to write the student edition into the source folder "
            f"{src}: choose a folder outside it"
        )
    if not src.is_dir():
        raise FileNotFoundError(
            f"the source folder {src} does not exist"
            if not src.exists()
            else f"{src} is not a folder"
        )
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(
            f"{out} is not empty: choose an empty or new folder, or pass "
            "--force to replace the notebooks in it"
        )
    sources = notebooks_in(src)
    if not sources:
        raise FileNotFoundError(f"no notebook (*.ipynb) in {src}")
    # Convert all first, so that one bad notebook leaves nothing half-written.
    editions = []
    for path in sources:
        try:
            editions.append((path.name, student_notebook(read_notebook(path))))
        except SolutionMarkerError as exc:
            raise SolutionMarkerError(f"{path}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, nb in editions:
        target = out / name
        nbformat.write(nb, target)
        written.append(target)
    return written


def default_source() -> Path:
    """``./notebooks`` if it exists, else the ``notebooks`` folder next to this package."""
    here = Path.cwd() / "notebooks"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "notebooks"


def configure_parser(parser) -> None:
    """Arguments of ``python -m nbio_helpers student-edition``."""
    parser.add_argument(
        "outdir",
        help="folder to write the student notebooks to (created if needed; not the source folder)",
    )
    parser.add_argument(
        "--source", default=None, help="folder of the instructor notebooks (default: ./notebooks)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into OUTDIR even if it is not empty (replacing notebooks of the same name)",
    )


def run(args) -> int:
    """Write the edition; print each written file. Exit code 0, or 1 with a message."""
    import sys

    source = Path(args.source) if args.source else default_source()
    try:
        written = write_student_edition(source, args.outdir, force=args.force)
    except (ValueError, OSError) as exc:
        print(f"student-edition: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} student notebook(s) in {Path(args.outdir).resolve()}")
    return 0


__all__ = [
    "ANSWER_HERE",
    "InvalidNotebookError",
    "SolutionMarkerError",
    "configure_parser",
    "read_notebook",
    "run",
    "strip_code_solutions",
    "strip_hidden_tests",
    "strip_markdown_solutions",
    "student_notebook",
    "write_student_edition",
]
