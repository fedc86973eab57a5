"""Every module of the package says what it offers: ``__all__``, public names only (ruff's
RUF022 keeps it sorted).

And every name a notebook imports from a module is one that module offers, from three
places at most: the package (its public API), ``nbio_helpers.lessons.nbNN`` and
``nbio_helpers.exercises.nbNN`` of the notebook's own number.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import pathlib
import pkgutil

import pytest

import nbio_helpers

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(nbio_helpers.__path__, "nbio_helpers.")
    if not m.name.endswith(".__main__")
)


@pytest.mark.parametrize("name", ["nbio_helpers", *MODULES])
def test_the_module_lists_its_public_names(name):
    module = importlib.import_module(name)
    names = module.__all__
    assert isinstance(names, list)
    assert [n for n in names if n.startswith("_")] == []
    assert [n for n in names if not hasattr(module, n)] == []
    assert len(set(names)) == len(names)


def notebook_imports():
    """``(notebook, module, name)`` for each ``from nbio_helpers... import name`` in a
    notebook's code cells."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            lines = [line for line in source.splitlines() if not line.lstrip().startswith("%")]
            try:
                tree = ast.parse("\n".join(lines))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.module
                    and node.module.startswith("nbio_helpers")
                ):
                    found += [(path.name, node.module, alias.name) for alias in node.names]
    return found


def test_what_the_notebooks_import_is_offered():
    imports = notebook_imports()
    assert imports  # the notebooks were read
    missing = []
    for notebook, module_name, name in imports:
        module = importlib.import_module(module_name)
        if hasattr(module, "__path__") and importlib.util.find_spec(f"{module_name}.{name}"):
            continue  # a submodule
        offered = getattr(module, "__all__", None)
        if offered is None or name not in offered:
            missing.append(f"{notebook}: from {module_name} import {name}")
    assert missing == []


def test_a_notebook_imports_from_three_places_at_most():
    by_notebook: dict[str, set[str]] = {}
    for notebook, module_name, _ in notebook_imports():
        by_notebook.setdefault(notebook, set()).add(module_name)
    assert set(by_notebook) >= {p.name for p in (ROOT / "notebooks").glob("0[1-6]_*.ipynb")}
    for notebook, modules in by_notebook.items():
        number = notebook[:2]
        allowed = {
            "nbio_helpers",
            f"nbio_helpers.lessons.nb{number}",
            f"nbio_helpers.exercises.nb{number}",
        }
        assert modules <= allowed, f"{notebook} imports from {sorted(modules - allowed)}"


def test_importing_the_package_loads_no_plotting_or_widgets():
    """The command line imports the package: matplotlib and ipywidgets wait until a notebook
    asks for a plot or a widget (nbio_helpers.__getattr__; the plots import matplotlib when
    they draw)."""
    import subprocess
    import sys

    code = (
        "import sys, nbio_helpers; "
        "print(sorted(m for m in ('matplotlib', 'ipywidgets') if m in sys.modules)); "
        "nbio_helpers.ClientConsole; print('ipywidgets' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["[]", "True"]


# ------------------------------------------------------------------ tests use public names
def _private(name: str) -> bool:
    """``_name``, not a dunder, nor an IPython-style ``_repr_html_`` protocol name."""
    return name.startswith("_") and not name.startswith("__") and not name.endswith("_")


def _private_names_of_the_package() -> set[str]:
    """Every private name the package defines: functions, classes, module and class
    variables, attributes it assigns (``self._open = ...``), ``__slots__`` entries."""
    names: set[str] = set()
    for path in (ROOT / "nbio_helpers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)  # __slots__ = ("_x",), setattr(self, "_x", ...)
    return {n for n in names if _private(n) and n.isidentifier()}


# (test file, private name): why no public name can do. Keep it short.
PRIVATE_USES_ALLOWED = {
    # A learner call that missed its _leave (an asynchronous exception landing between
    # _enter and the try that runs it) in a thread that ended, whose ident a later thread
    # gets: no public call makes either happen on demand, so the test writes that state.
    **dict.fromkeys(
        [("test_exercises_base.py", n) for n in ("_enter", "_lock", "_running", "_Call")],
        "exercises.harness: the state of a missed _leave",
    ),
    # The test interrupts Server.stop() before and after each of its steps. The steps are
    # private on purpose: the one stop rule is not for a model to override.
    **dict.fromkeys(
        [("test_interrupts.py", n) for n in ("_shut_down_all", "_wake", "_close_all")],
        "Server.stop(): the steps of the one stop rule",
    ),
    # A step of the learner's coroutine that the loop would run after try_on_asyncio's
    # conversation is over: no public call makes one come at that moment on demand.
    ("test_exercises_nb06.py", "_Steps"): "exercises.nb06: no learner step once it is over",
    # A talking client starved of the GIL by a spinning loop (a loaded machine): its echoes
    # come back late, or it is cut off. No public call makes a thread starve on demand.
    ("test_exercises_nb05.py", "_chatty_client"): "exercises.nb05: a starved client",
}


def private_uses_in_tests() -> set[tuple[str, str, int]]:
    """``(file, name, line)`` for each private name of the package a test file imports,
    reads or patches (``x._name``, ``"_name"`` as in ``setattr(x, "_name", ...)``,
    ``from nbio_helpers... import _name``). A test's own ``self._name``, or a name the
    test file itself defines, is its own business."""
    package = _private_names_of_the_package()
    found = set()
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name == pathlib.Path(__file__).name:
            continue  # this file names private names as data
        own: set[str] = set()  # what the test file itself defines or assigns
        read: list[tuple[str, int, bool]] = []  # (name, line, read as self._name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "nbio_helpers"
            ):
                parts = [a.name for a in node.names] + (node.module or "").split(".")
                read += [(p, node.lineno, False) for p in parts if _private(p)]
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("nbio_helpers"):
                        parts = alias.name.split(".")
                        read += [(p, node.lineno, False) for p in parts if _private(p)]
            elif isinstance(node, ast.Attribute) and node.attr in package:
                if isinstance(node.ctx, ast.Store):
                    own.add(node.attr)
                mine = isinstance(node.value, ast.Name) and node.value.id == "self"
                read.append((node.attr, node.lineno, mine))
            elif isinstance(node, ast.Constant) and node.value in package:
                read.append((node.value, node.lineno, False))
        found |= {
            (path.name, name, line) for name, line, mine in read if not (mine and name in own)
        }
    return found


@pytest.mark.slow  # parses the package and every test file: about 0.5 s
def test_the_tests_use_public_names_only():
    uses = private_uses_in_tests()
    assert {(f, n) for f, n, _ in uses} >= set(PRIVATE_USES_ALLOWED)  # each entry still needed
    unexplained = sorted(u for u in uses if u[:2] not in PRIVATE_USES_ALLOWED)
    assert unexplained == [], "tests reach into private names of nbio_helpers"


def test_the_private_use_check_finds_each_kind_of_use(tmp_path, monkeypatch):
    (tmp_path / "nbio_helpers").mkdir()
    (tmp_path / "nbio_helpers" / "m.py").write_text(
        "_flag = 1\ndef _helper(): pass\n"
        "class C:\n    def __init__(self):\n        self._open = {}\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "from nbio_helpers.m import _helper, C\n"
        "import nbio_helpers._hidden\n"
        "def test(monkeypatch):\n"
        "    monkeypatch.setattr(m, '_flag', 2)\n"
        "    assert not C()._open\n"
        "class Mine:\n"
        "    def __init__(self):\n        self._flag = 0\n"
        "    def f(self):\n        return self._flag, self._open, sock._closed\n"
    )
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert sorted(n for _, n, _ in private_uses_in_tests()) == [
        "_flag",  # the string in setattr; self._flag is the test class's own
        "_helper",
        "_hidden",
        "_open",
        "_open",  # self._open, not assigned by the test file: a subclass reading ours
    ]
