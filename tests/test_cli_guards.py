"""Commands refuse bad input at once, with one clear line, before doing any work."""
import subprocess
import sys

import pytest

from nbio_helpers.server import is_loopback

pytestmark = pytest.mark.timeout(60)


def nbio(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nbio_helpers", *args], capture_output=True,
                          text=True, timeout=50, cwd=cwd)


def test_execute_notebooks_never_falls_back_to_a_folder_it_was_not_given(tmp_path):
    proc = nbio("execute-notebooks", cwd=tmp_path)    # no ./notebooks here
    assert proc.returncode == 2
    assert "no ./notebooks folder here" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_execute_notebooks_names_a_missing_path(tmp_path):
    missing = tmp_path / "nope.ipynb"
    proc = nbio("execute-notebooks", str(missing))
    assert proc.returncode == 2
    assert f"no such file or folder: {missing}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bench_refuses_an_unwritable_json_path_before_measuring(tmp_path):
    proc = nbio("bench", "--quick", "--json", str(tmp_path / "missing" / "out.json"))
    assert proc.returncode == 2
    assert "no such folder" in proc.stderr
    assert "loopback ceiling" not in proc.stdout     # nothing was measured


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.0.2.1", False), ("example", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback
