"""Hooks for every test and every notebook cell, in tests/ and in notebooks/ alike.

They live here, at the top, because pytest asks a conftest.py only about the items below
its own folder: tests/conftest.py never sees the notebooks' cells. tests/run_alone.py marks
the tests that measure (and every notebook cell) ``alone`` and keeps them alone under
``pytest -n`` or a shared ``NBIO_TEST_LOCK_DIR``.
"""

pytest_plugins = ["tests.run_alone"]
