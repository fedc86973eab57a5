"""Hooks for every test and every notebook cell, in tests/ and in notebooks/ alike.

They live here, at the top, because pytest asks a conftest.py only about the items below
its own folder: tests/conftest.py never sees the notebooks' cells. tests/run_alone.py marks
the tests that measure (and every notebook cell) ``alone`` and keeps them alone under
``pytest -n`` or a shared ``NBIO_TEST_LOCK_DIR``. It is loaded from its file (module
``nbio_run_alone``): the name ``tests`` may belong to another installed package.
"""

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "nbio_run_alone", Path(__file__).resolve().parent / "tests" / "run_alone.py"
)
run_alone = importlib.util.module_from_spec(_spec)
sys.modules["nbio_run_alone"] = run_alone
_spec.loader.exec_module(run_alone)

pytest_configure = run_alone.pytest_configure
pytest_collection_modifyitems = run_alone.pytest_collection_modifyitems
pytest_runtest_protocol = run_alone.pytest_runtest_protocol
pytest_xdist_auto_num_workers = run_alone.pytest_xdist_auto_num_workers
