"""The series as a static website, built with Jupyter Book 1 (offline, nothing fetched).

Command line::

    pip install -e ".[site]"                       # Jupyter Book 1: an extra, not a dependency
    python -m nbio_helpers site OUTDIR [--source notebooks]
    # open OUTDIR/index.html (OUTDIR/00_start_here.html is the first page)

From Python::

    build_site("notebooks", "/tmp/site")           # -> Path("/tmp/site/index.html")

What the pages hold:

* the student edition's text and code: solutions removed by
  :func:`nbio_helpers.cli.student.student_notebook` (no ``BEGIN SOLUTION``, no solution code);
* the instructor notebooks' stored outputs (plots, tables, checker verdicts), except those of
  the cells whose solution was removed (they could show it);
* no cell tagged ``answer`` (one that shows the package's own solution after an exercise's
  checker, as notebook 06 does): a run of them becomes one line, :data:`ANSWER_NOTE`;
* each widget drawn statically from its saved state, with a note that it is live in
  JupyterLab (no JavaScript and no CDN: the pages work offline);
* every figure with alt text that says what it shows: the output's own ``alt`` metadata if
  it has one, else the cell's ``nbio.alt`` metadata, else the figure's title found in the
  cell's code (``title=...``, ``set_title(...)``), else the section it belongs to.

Nothing is executed: a page shows what the committed notebook stored.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from nbio_helpers.cli.student import notebooks_in, student_notebook

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
ANSWER_NOTE = (
    "*In JupyterLab, the package's own solution is shown here, after the checker: "
    "run the notebook to compare it with yours.*"
)
ANSWER_TAG = "answer"
LIVE_NOTE = (
    "This widget is live in JupyterLab: run the notebook to use it. Shown here as it was saved."
)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
TITLE = "nbio: non-blocking IO, hands-on"

_TITLE_IN_CODE = re.compile(
    r"""(?:\btitle\s*=\s*|set_title\(\s*|suptitle\(\s*)(?:f?)(["'])(?P<title>[^"'{}\n]{4,})\1"""
)


class SiteError(RuntimeError):
    """The site cannot be built (Jupyter Book missing, a build failure): the message says why."""


# ---------------------------------------------------------------- notebooks -> pages
def site_notebook(nb):
    """The notebook a page is built from: the student edition's cells with the instructor's
    stored outputs (not those of cells whose solution was removed), widgets drawn statically,
    and every figure's alt text in its output metadata (``image/png`` -> ``alt``)."""
    student = student_notebook(nb)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    section = ""
    for original, cell in zip(nb.cells, student.cells):
        if cell.cell_type == "markdown":
            headings = [
                line.lstrip("#").strip()
                for line in cell.source.splitlines()
                if line.startswith("#")
            ]
            section = headings[-1] if headings else section
            continue
        if cell.cell_type != "code" or cell.source != original.source:
            continue  # a solution was removed here: its outputs stay out
        cell.execution_count = original.get("execution_count")
        cell.outputs = [
            _page_output(o, state, original, section) for o in original.get("outputs", [])
        ]
    student.cells = without_answers(student.cells)
    student.metadata.pop("widgets", None)
    return student


def without_answers(cells) -> list:
    """``cells`` with each run of cells tagged ``answer`` replaced by one :data:`ANSWER_NOTE`."""
    kept = []
    for cell in cells:
        if ANSWER_TAG not in cell.get("metadata", {}).get("tags", []):
            kept.append(cell)
        elif not (kept and kept[-1].get("source") == ANSWER_NOTE):
            kept.append(nbformat.v4.new_markdown_cell(ANSWER_NOTE))
    return kept


def _page_output(output, state, cell, section):
    output = nbformat.from_dict(output)  # a copy
    data = output.get("data", {})
    if WIDGET_VIEW in data:
        model = data[WIDGET_VIEW].get("model_id")
        output.data = {"text/html": static_widget(model, state)}
        return output
    for mime in IMAGE_TYPES:
        if mime in data:
            meta = output.setdefault("metadata", {}).setdefault(mime, {})
            meta.setdefault("alt", figure_alt(cell, section))
    return output


def figure_alt(cell, section: str = "") -> str:
    """Alt text for a figure that ``cell`` displayed: its ``nbio.alt`` metadata, else the
    title its code gives the figure, else the section it belongs to."""
    given = cell.get("metadata", {}).get("nbio", {}).get("alt")
    if given:
        return given
    titles = [m.group("title").strip() for m in _TITLE_IN_CODE.finditer(cell.source)]
    if titles:
        return "Figure: " + "; ".join(dict.fromkeys(titles))
    calls = re.findall(r"\b(plot_\w+|plot_\w*)\(", cell.source)
    what = f"drawn by {calls[0]}()" if calls else "drawn by this cell"
    return f"Figure of section '{section}', {what}" if section else f"Figure {what}"


def static_widget(model_id: str | None, state: dict) -> str:
    """HTML for a widget from its saved state (labels, values, text and images it showed),
    with :data:`LIVE_NOTE`. Works without JavaScript."""
    body = (
        _widget_html(model_id, state, depth=0)
        if model_id in state
        else ("<em>(this widget's state was not saved)</em>")
    )
    return (
        f'<div class="nbio-static-widget" style="border:1px solid #ccc;border-radius:4px;'
        f'padding:0.5em;margin:0.3em 0">{body}'
        f'<p class="nbio-live-note" style="font-size:0.85em;color:#555;margin:0.4em 0 0">'
        f"{html.escape(LIVE_NOTE)}</p></div>"
    )


def _widget_html(model_id, state, depth) -> str:
    if depth > 20 or model_id not in state:
        return ""
    model = state[model_id]
    name = model.get("model_name", "")
    s = model.get("state", {})
    label = html.escape(str(s.get("description") or ""))
    children = [c.removeprefix("IPY_MODEL_") for c in s.get("children", [])]
    if children:
        inner = "".join(_widget_html(c, state, depth + 1) for c in children)
        direction = "row" if name.startswith("HBox") else "column"
        return f'<div style="display:flex;flex-direction:{direction};gap:0.5em">{inner}</div>'
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{s.get('value', '')}</div>"  # the widget's own (escaped) HTML
    if name == "OutputModel":
        return "".join(_output_html(o) for o in s.get("outputs", []))
    if name == "ButtonModel":
        return f'<button disabled title="live in JupyterLab">{label or "button"}</button>'
    if "value" in s:
        value = html.escape(str(s["value"]))
        hint = html.escape(str(s.get("placeholder") or ""))
        shown = value or f"<span style='color:#888'>{hint}</span>"
        return f"<span>{label + ': ' if label else ''}{shown}</span>"
    return ""


def _output_html(output) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre>{html.escape(''.join(output.get('text', '')))}</pre>"
    data = output.get("data", {})
    if "image/png" in data:
        src = "".join(data["image/png"]).replace("\n", "")
        return (
            f'<img src="data:image/png;base64,{src}" alt="{html.escape(_widget_figure_alt(data))}">'
        )
    if "text/html" in data:
        return "".join(data["text/html"])
    if "text/plain" in data:
        return f"<pre>{html.escape(''.join(data['text/plain']))}</pre>"
    return ""


def _widget_figure_alt(data) -> str:
    text = "".join(data.get("text/plain", ""))
    return "Figure shown by the widget when it was saved" + (
        f" ({text})" if text and not text.startswith("<Figure") else ""
    )


# ---------------------------------------------------------------- the book
def write_book(src_dir, book_dir) -> list[Path]:
    """Write the Jupyter Book sources (``_config.yml``, ``_toc.yml``, the page notebooks)
    into ``book_dir``; returns the notebooks written."""
    sources = notebooks_in(Path(src_dir))
    if not sources:
        raise SiteError(f"no notebook (*.ipynb) in {src_dir}")
    book = Path(book_dir)
    book.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        target = book / path.name
        nbformat.write(site_notebook(nbformat.read(path, as_version=4)), target)
        written.append(target)
    root, *chapters = [p.stem for p in written]
    (book / "_toc.yml").write_text(
        "format: jb-book\n"
        f"root: {root}\n"
        + ("chapters:\n" + "".join(f"  - file: {c}\n" for c in chapters) if chapters else ""),
        encoding="utf-8",
    )
    (book / "_config.yml").write_text(
        f"""\
title: "{TITLE}"
author: The nbio authors
copyright: "2026. Text and figures CC BY 4.0, code MIT"
only_build_toc_files: true
execute:
  execute_notebooks: "off"
html:
  use_repository_button: false
  use_issues_button: false
  use_edit_page_button: false
  use_download_button: false
  home_page_in_navbar: true
launch_buttons:
  notebook_interface: none
  binderhub_url: ""
  thebe: false
sphinx:
  config:
    nb_ipywidgets_js: {{}}
    html_show_copyright: true
    html_theme_options:
      search_bar_text: Search the series
""",
        encoding="utf-8",
    )
    return written


def build_site(src_dir, out_dir, *, timeout: float = 600.0) -> Path:
    """Build the site of the notebooks in ``src_dir`` into ``out_dir``; returns its index.

    Raises :class:`SiteError` with a readable message if Jupyter Book 1 is not installed or
    the build fails. ``out_dir`` must not be ``src_dir`` or inside it.
    """
    if importlib.util.find_spec("jupyter_book") is None:
        raise SiteError('Jupyter Book is not installed: pip install -e ".[site]"')
    src, out = Path(src_dir).resolve(), Path(out_dir).resolve()
    if out == src or src in out.parents:
        raise SiteError(f"refusing to build the site inside the notebooks folder {src}")
    with tempfile.TemporaryDirectory(prefix="nbio-site-") as tmp:
        book = Path(tmp) / "book"
        write_book(src, book)
        alts = _image_alts(book)
        done = subprocess.run(
            [sys.executable, "-c", _JUPYTER_BOOK, "build", str(book), "--builder", "html"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        html_dir = book / "_build" / "html"
        if done.returncode != 0 or not (html_dir / "index.html").exists():
            raise SiteError("jupyter-book build failed:\n" + (done.stdout + done.stderr)[-4000:])
        _finish_pages(html_dir, alts)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(html_dir, out)
    return out / "index.html"


def _image_alts(book: Path) -> dict[str, str]:
    """sha256 of each stored image -> its alt text (myst-nb names image files by that hash)."""
    alts = {}
    for path in book.glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                for mime in ("image/png", "image/jpeg"):
                    if mime in output.get("data", {}):
                        raw = base64.b64decode("".join(output["data"][mime]))
                        alt = output.get("metadata", {}).get(mime, {}).get("alt", "")
                        alts[hashlib.sha256(raw).hexdigest()] = alt
    return alts


_JUPYTER_BOOK = "import sys; from jupyter_book.cli.main import main; sys.exit(main())"
"""``jupyter-book`` run with this Python (its package has no ``__main__``)."""

_IMG = re.compile(r"<img\b[^>]*>")


_REMOTE_SCRIPT = re.compile(r'<script\b[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>\s*')


def _finish_pages(html_dir: Path, alts: dict[str, str]) -> None:
    """Give each figure's ``<img>`` its alt text (docutils would put the file name there),
    and drop scripts the theme loads from the network (MathJax: the series has no math), so
    that every page works offline."""
    for page in html_dir.glob("*.html"):
        text = page.read_text(encoding="utf-8")

        def fix(match: re.Match) -> str:
            tag = match.group(0)
            src = re.search(r'src="([^"]*?([0-9a-f]{64})\.\w+)"', tag)
            if not src or src.group(2) not in alts:
                return tag
            current = re.search(r'\salt="([^"]*)"', tag)
            if current and current.group(1) and current.group(1) != src.group(1):
                return tag  # an alt text of its own
            tag = re.sub(r'\salt="[^"]*"', "", tag)
            return tag[:4] + f' alt="{html.escape(alts[src.group(2)], quote=True)}"' + tag[4:]

        new = _REMOTE_SCRIPT.sub("", _IMG.sub(fix, text))
        if new != text:
            page.write_text(new, encoding="utf-8")


# ---------------------------------------------------------------- command line
def configure_parser(parser) -> None:
    """Arguments of ``python -m nbio_helpers site``."""
    parser.add_argument(
        "outdir",
        help="folder to write the website to (replaced if it exists; "
        "not inside the notebooks folder)",
    )
    parser.add_argument(
        "--source", default=None, help="folder of the notebooks (default: ./notebooks)"
    )


def run(args) -> int:
    """Build the site; print where its first page is. Exit 0, or 1 with a message."""
    from nbio_helpers.cli.student import default_source

    source = Path(args.source) if args.source else default_source()
    try:
        index = build_site(source, args.outdir)
    except (SiteError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"site: {exc}", file=sys.stderr)
        return 1
    print(f"site written to {index.parent}; open {index}")
    return 0


__all__ = [
    "ANSWER_NOTE",
    "LIVE_NOTE",
    "WIDGET_VIEW",
    "SiteError",
    "build_site",
    "configure_parser",
    "figure_alt",
    "run",
    "site_notebook",
    "static_widget",
    "without_answers",
    "write_book",
]
