"""Every module of the package says what it offers: ``__all__``, public names only (ruff's
RUF022 keeps it sorted).

And every name a notebook imports from a module is one that module offers.
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
# Modules rewritten in parallel right now (issue 14): their __all__ comes with that work.
PENDING = {
    "nbio_helpers.backpressure",
    "nbio_helpers.bench.load",
    "nbio_helpers.bench.servers",
    "nbio_helpers.clients",
    "nbio_helpers.connection",
    "nbio_helpers.exercises.nb04",
    "nbio_helpers.exercises.nb05",
    "nbio_helpers.framing",
    "nbio_helpers.loop.transport",
    "nbio_helpers.models.asyncio_model",
    "nbio_helpers.models.blocking",
    "nbio_helpers.models.polling",
    "nbio_helpers.models.select_model",
    "nbio_helpers.models.selectors_model",
    "nbio_helpers.models.tasks_model",
    "nbio_helpers.models.threads",
    "nbio_helpers.registry",
    "nbio_helpers.server",
    "nbio_helpers.terminal",
}


@pytest.mark.parametrize("name", ["nbio_helpers", *MODULES])
def test_the_module_lists_its_public_names(name):
    module = importlib.import_module(name)
    if name in PENDING and not hasattr(module, "__all__"):
        pytest.xfail("its __all__ comes with the work on that module")
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
        if offered is None and module_name in PENDING:
            continue
        if offered is None or name not in offered:
            missing.append(f"{notebook}: from {module_name} import {name}")
    assert missing == []
