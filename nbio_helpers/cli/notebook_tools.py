"""Maintainer tools for the notebooks: re-execute them in place, and check their template.

Re-execute (fresh kernel per notebook, kernel ``python3``, working directory = the notebook's
folder), so that committed outputs always come from a clean top-to-bottom run::

    python -m nbio_helpers execute-notebooks                  # every notebooks/*.ipynb
    python -m nbio_helpers execute-notebooks notebooks/01_blocking_recv.ipynb

It prints the time each notebook took and exits 1, without rewriting the notebook, if a cell
produced an error that its tags did not announce (``raises-exception``). A file that is not a
notebook, a kernel that dies, a cell that times out: each is reported in a line, and the next
notebook runs anyway; the exit code says whether any failed. Template problems (see
:func:`template_problems`) are printed as warnings.

Check a notebook against the series' template (used by tests/test_notebook_template.py)::

    template_problems(nbformat.read(path, as_version=4))      # [] when it follows every rule
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

KERNEL_NAME = "python3"
IGNORE_OUTPUT_TAGS = {"nbval-ignore-output", "nbval-skip"}
IGNORE_OUTPUT_COMMENTS = ("# NBVAL_IGNORE_OUTPUT", "# NBVAL_SKIP")
RAISES_TAG = "raises-exception"

# What must not appear in an output that nbval compares: it differs from run to run.
VOLATILE = {
    "a port number": re.compile(
        r"(?:127\.0\.0\.1|localhost|0\.0\.0\.0|::1)['\]]?\s*[:,]\s*\d{1,5}\b"
        r"|\bport\s*[=:]?\s*\d{2,5}\b",
        re.IGNORECASE,
    ),
    "a file descriptor number": re.compile(
        r"\bfd\s*[=:]\s*-?\d+|\bfds?\s+\d+\b|fileno\(\)\s*(?:=|==|:|->)?\s*\d+", re.IGNORECASE
    ),
    "a 0x address": re.compile(r"\b0x[0-9a-fA-F]{4,}\b"),
    "a timing": re.compile(
        r"(?<![\w.])\d+\.\d+\s*(?:s|ms|µs|us|ns|secs?|seconds|milliseconds|microseconds)\b"
        r"|(?<![\w.])\d+\s*(?:ms|µs|us|ns|milliseconds|microseconds)\b"
    ),
}
"""Name -> pattern of run-dependent text. Integer seconds ("a timeout of 2 s") are allowed:
they are settings, not measurements."""

_TEXT_KEYS = ("text/plain", "text/html", "text/markdown", "text/latex")
_CHECKER_CALL = re.compile(r"(?<!def )\bcheck_\w+\(")


# ---------------------------------------------------------------- reading cells
def tags(cell) -> set[str]:
    """The cell's tags, as a set."""
    return set(cell.get("metadata", {}).get("tags", []))


def ignores_output(cell) -> bool:
    """True if nbval does not compare this cell's outputs."""
    return bool(tags(cell) & IGNORE_OUTPUT_TAGS) or any(
        cell.source.lstrip().startswith(c) for c in IGNORE_OUTPUT_COMMENTS
    )


def output_texts(output) -> list[str]:
    """The text of one output that nbval compares (stream, text/* data, error message)."""
    kind = output.get("output_type")
    if kind == "stream":
        return [_text(output.get("text", ""))]
    if kind in ("execute_result", "display_data"):
        data = output.get("data", {})
        return [_text(data[key]) for key in _TEXT_KEYS if key in data]
    if kind == "error":
        return [f"{output.get('ename', '')}: {output.get('evalue', '')}"]
    return []


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def code_cells(nb) -> list:
    """Code cells with some source (nbclient does not execute empty ones)."""
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def is_checker_cell(cell) -> bool:
    """A code cell that calls a ``check_…`` function."""
    return cell.cell_type == "code" and bool(_CHECKER_CALL.search(cell.source))


def unexpected_errors(nb) -> list[str]:
    """Error outputs of cells not tagged ``raises-exception``, as readable lines."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or RAISES_TAG in tags(cell):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return found


# ---------------------------------------------------------------- the template
def template_problems(nb) -> list[str]:
    """Every way notebook ``nb`` breaks the series' template; ``[]`` if none.

    Rules: a title cell ``# NN · Title`` naming Objectives, Prerequisites and Time; the first
    code cell calls ``setup_notebook()``; ``## Exercises`` then ``## Key points`` sections
    (only ``## Key points``, and no solution or checker, in a notebook whose metadata says
    ``"nbio": {"exercises": false}``: see :func:`has_exercises`); the
    last code cell calls ``finish()`` and printed its two lines; execution counts 1..n; no
    error output except in cells tagged ``raises-exception`` (which must raise); no port, fd,
    ``0x`` address or timing in compared outputs; plots and widgets only in cells tagged
    ``nbval-ignore-output``; no trailing ``;``; kernelspec ``python3``; each solution cell has
    nbgrader metadata (unique ``grade_id``) and code solutions are followed by a checker cell
    that is a locked, graded nbgrader test cell with points, showing no result.
    """
    problems: list[str] = []
    problems += _check_title(nb)
    problems += _check_sections(nb)
    problems += _check_setup_and_finish(nb)
    problems += _check_execution(nb)
    problems += _check_outputs(nb)
    problems += _check_exercises(nb)
    spec = nb.metadata.get("kernelspec", {})
    if spec.get("name") != KERNEL_NAME:
        problems.append(f"kernelspec name is {spec.get('name')!r}, not {KERNEL_NAME!r}")
    return problems


def _check_title(nb) -> list[str]:
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        return ["the first cell is not a markdown title cell"]
    text = nb.cells[0].source
    problems = []
    if not re.match(r"#\s+\d\d\s+·\s+\S", text):
        problems.append("the title cell does not start with '# NN · Title'")
    for word in ("Objectives", "Prerequisites", "Time"):
        if not re.search(rf"\b{word}\b", text, re.IGNORECASE):
            problems.append(f"the title cell does not name the {word}")
    return problems


def has_exercises(nb) -> bool:
    """False for a notebook whose metadata says ``"nbio": {"exercises": false}`` (the landing
    page, 00): it needs no ``## Exercises`` section and may hold no solution or checker."""
    return nb.metadata.get("nbio", {}).get("exercises", True) is not False


def _check_sections(nb) -> list[str]:
    headings = [
        line.strip().lower()
        for c in nb.cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("## ")
    ]
    problems = []
    positions = {}
    required: tuple[tuple[str, str], ...] = (
        ("## exercises", "## Exercises"),
        ("## key points", "## Key points"),
    )
    if not has_exercises(nb):
        required = required[1:]
        for index, cell in enumerate(nb.cells):
            if "BEGIN SOLUTION" in cell.source or is_checker_cell(cell):
                problems.append(
                    f"cell {index}: a solution or checker in a notebook whose "
                    "metadata says it has no exercises"
                )
    for section, name in required:
        found = [i for i, h in enumerate(headings) if h.startswith(section)]
        if not found:
            problems.append(f"no '{name}' section")
        else:
            positions[section] = found[0]
    if len(positions) == 2 and positions["## key points"] < positions["## exercises"]:
        problems.append("'## Key points' comes before '## Exercises'")
    return problems


def _check_setup_and_finish(nb) -> list[str]:
    cells = code_cells(nb)
    if not cells:
        return ["the notebook has no code cell"]
    problems = []
    if "setup_notebook(" not in cells[0].source:
        problems.append("the first code cell does not call setup_notebook()")
    last = cells[-1]
    if "finish()" not in last.source:
        problems.append("the last code cell does not call finish()")
    else:
        printed = "".join(t for o in last.get("outputs", []) for t in output_texts(o))
        if "servers running: none" not in printed or "nbio threads alive: 0" not in printed:
            problems.append("the finish() cell did not print that nothing is left running")
    return problems


def _check_execution(nb) -> list[str]:
    counts = [c.get("execution_count") for c in code_cells(nb)]
    if counts != list(range(1, len(counts) + 1)):
        return [
            f"execution counts are not 1..{len(counts)} (not run top to bottom in one "
            f"fresh kernel): {counts}"
        ]
    return []


def _check_outputs(nb) -> list[str]:
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        raised = any(o.get("output_type") == "error" for o in outputs)
        if raised and RAISES_TAG not in tags(cell):
            problems.append(f"cell {index}: error output but no '{RAISES_TAG}' tag")
        if RAISES_TAG in tags(cell) and not raised:
            problems.append(f"cell {index}: tagged '{RAISES_TAG}' but raised nothing")
        last_line = next(
            (
                line
                for line in reversed(cell.source.splitlines())
                if line.strip() and not line.strip().startswith("#")
            ),
            "",
        )
        if last_line.rstrip().endswith(";"):
            problems.append(f"cell {index}: trailing ';' (assign to _ or call plt.show())")
        if ignores_output(cell):
            continue
        for output in outputs:
            data = output.get("data", {})
            if any(key.startswith("image/") for key in data):
                problems.append(f"cell {index}: a plot in a cell not tagged nbval-ignore-output")
            if "application/vnd.jupyter.widget-view+json" in data:
                problems.append(f"cell {index}: a widget in a cell not tagged nbval-ignore-output")
            shows_code = "show_source(" in cell.source  # source text may mention "0.5 s"
            for text in output_texts(output):
                for what, pattern in VOLATILE.items():
                    if what == "a timing" and shows_code:
                        continue
                    match = pattern.search(text)
                    if match:
                        problems.append(
                            f"cell {index}: {what} in a compared output: {match.group(0)!r}"
                        )
    return problems


GRADED_CELL = {"grade": True, "locked": True, "solution": False, "schema_version": 3}
"""nbgrader metadata every checker cell that follows an exercise carries (and ``points``)."""


def _check_exercises(nb) -> list[str]:
    """Solution cells carry nbgrader solution metadata; each code exercise is followed by a
    checker cell that is a locked, graded nbgrader test cell with points, whose stored output
    is the verdict alone (no ``True``/``False`` result); grade_ids are unique."""
    problems = []
    grade_ids: dict[str | None, int] = {}  # None: a cell without a grade_id

    def note_id(index: int, meta: dict) -> None:
        gid = meta.get("grade_id")
        if gid in grade_ids:
            problems.append(f"cell {index}: grade_id {gid!r} already used by cell {grade_ids[gid]}")
        grade_ids[gid] = index
        if meta.get("schema_version") != 3:
            problems.append(f"cell {index}: nbgrader schema_version is not 3")

    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if meta and meta.get("grade") and meta.get("grade_id"):
            note_id(index, meta)
        has_code_region = cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source
        has_md_region = cell.cell_type == "markdown" and "BEGIN SOLUTION" in cell.source
        if not (has_code_region or has_md_region):
            continue
        if not meta or not meta.get("solution") or not meta.get("grade_id"):
            problems.append(
                f"cell {index}: solution cell without nbgrader metadata (solution: true, grade_id)"
            )
        else:
            if not meta.get("grade"):
                note_id(index, meta)
            if meta.get("locked"):
                problems.append(f"cell {index}: a solution cell must not be locked")
        if "END SOLUTION" not in cell.source:
            problems.append(f"cell {index}: BEGIN SOLUTION without END SOLUTION")
        if has_code_region:
            following = next((c for c in nb.cells[index + 1 :] if c.cell_type == "code"), None)
            if following is None or not is_checker_cell(following):
                problems.append(
                    f"cell {index}: exercise not followed by a checker cell "
                    "(a code cell calling check_…)"
                )
                continue
            at = nb.cells.index(following)
            graded = following.metadata.get("nbgrader", {})
            wrong = [
                f"{key}: {value}" for key, value in GRADED_CELL.items() if graded.get(key) != value
            ]
            if not graded.get("grade_id"):
                wrong.append("a grade_id")
            points = graded.get("points")
            if not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0:
                wrong.append("points > 0")
            if wrong:
                problems.append(
                    f"cell {at}: the checker cell is not a locked, graded nbgrader "
                    f"test cell (needs {', '.join(wrong)})"
                )
            if any(o.get("output_type") == "execute_result" for o in following.get("outputs", [])):
                problems.append(
                    f"cell {at}: the checker cell shows a result (True/False?) under its verdict"
                )
    return problems


# ---------------------------------------------------------------- executing
def default_notebooks_dir() -> Path:
    """``./notebooks`` if it exists, else the ``notebooks`` folder next to this package."""
    here = Path.cwd() / "notebooks"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "notebooks"


def notebook_paths(paths=()) -> list[Path]:
    """The notebooks named (folders expanded); all of the default folder if none named."""
    found: list[Path] = []
    for path in map(Path, paths or [default_notebooks_dir()]):
        if path.is_dir():
            found += sorted(p for p in path.glob("*.ipynb") if not p.name.startswith("."))
        else:
            found.append(path)
    return found


def execute_notebook(
    nb, cwd, *, timeout: float = 120.0, kernel_name: str = KERNEL_NAME, kernel_log=None
):
    """Execute notebook ``nb`` (in place) in a fresh kernel whose working directory is
    ``cwd``. Errors do not stop the run; read them with :func:`unexpected_errors`.
    ``kernel_log``: a file for what the kernel process itself prints outside the cells
    (default: this process's terminal). Cells' outputs go into the notebook either way."""
    from nbclient import NotebookClient

    for cell in nb.cells:  # timing left by other tools (nbconvert, JupyterLab) is not kept
        cell.metadata.pop("execution", None)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        allow_errors=True,
        record_timing=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    if kernel_log is None:
        client.execute()
    else:
        client.execute(stdout=kernel_log, stderr=kernel_log)
    coalesce_streams(nb)
    return nb


def coalesce_streams(nb):
    """Merge each cell's consecutive ``stream`` outputs of the same name (stdout, stderr)
    into one, in place. How a cell's printing is cut into outputs depends on when the
    kernel flushed it; merged, the stored outputs are the same from run to run."""
    for cell in code_cells(nb):
        merged: list = []
        for output in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if (
                last is not None
                and output.get("output_type") == "stream" == last.get("output_type")
                and output.get("name") == last.get("name")
            ):
                last["text"] = _text(last["text"]) + _text(output["text"])
            else:
                merged.append(output)
        if "outputs" in cell:
            cell.outputs = merged
    return nb


def configure_parser(parser) -> None:
    """Arguments of ``python -m nbio_helpers execute-notebooks``."""
    parser.add_argument(
        "paths", nargs="*", help="notebooks or folders (default: every notebook in ./notebooks)"
    )
    from nbio_helpers.cli.args import seconds

    parser.add_argument(
        "--timeout",
        type=seconds(above=0, most=86400),
        default=120.0,
        help="seconds one cell may run (default 120; at most a day)",
    )


def run(args) -> int:
    """Execute each notebook in place; exit 1 if one failed (that one is not rewritten)."""
    if not args.paths and not (Path.cwd() / "notebooks").is_dir():
        # This command rewrites files: never fall back to a folder the user did not name.
        print(
            "execute-notebooks: no ./notebooks folder here; name the notebooks or folders "
            "to re-execute",
            file=sys.stderr,
        )
        return 2
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"execute-notebooks: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    paths = notebook_paths(args.paths)
    if not paths:
        print("execute-notebooks: no notebook found", file=sys.stderr)
        return 1
    failed = 0
    for path in paths:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # not JSON, not a notebook, unreadable: report, go on
            print(f"{path}: FAILED, not a notebook ({_in_one_line(exc)})", flush=True)
            failed += 1
            continue
        started = time.perf_counter()
        # The kernel's own output (ipykernel may log a traceback of its own as it shuts
        # down) is kept apart, and shown only when the run failed: it may tell why.
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as kernel_log:
            try:
                execute_notebook(
                    nb, path.resolve().parent, timeout=args.timeout, kernel_log=kernel_log
                )
            except Exception as exc:  # a timeout, a dead kernel: report and go on to the next
                print(f"{path}: FAILED ({_in_one_line(exc)})", flush=True)
                for line in _last_lines(kernel_log):
                    print(f"  kernel: {line}")
                failed += 1
                continue
        elapsed = time.perf_counter() - started
        errors = unexpected_errors(nb)
        if errors:
            failed += 1
            print(f"{path}: FAILED after {elapsed:.1f} s, not rewritten", flush=True)
            for line in errors:
                print(f"  {line}")
            continue
        try:
            nbformat.write(nb, path)
        except OSError as exc:
            print(f"{path}: FAILED, cannot rewrite it ({exc.strerror or exc})", flush=True)
            failed += 1
            continue
        print(f"{path}: {elapsed:.1f} s", flush=True)
        for problem in template_problems(nb):
            print(f"  warning: {problem}")
    if failed:
        print(f"execute-notebooks: {failed} of {len(paths)} notebook(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _last_lines(log, count: int = 5) -> list[str]:
    """The last ``count`` lines of text in the open file ``log``."""
    log.seek(0)
    return [line for line in log.read().splitlines() if line.strip()][-count:]


def _in_one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


__all__ = [
    "GRADED_CELL",
    "KERNEL_NAME",
    "VOLATILE",
    "coalesce_streams",
    "code_cells",
    "configure_parser",
    "default_notebooks_dir",
    "execute_notebook",
    "has_exercises",
    "ignores_output",
    "is_checker_cell",
    "notebook_paths",
    "output_texts",
    "run",
    "tags",
    "template_problems",
    "unexpected_errors",
]
