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
