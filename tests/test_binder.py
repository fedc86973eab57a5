"""Binder: repo2docker detects binder/ (Python buildpack, Python pinned), and JupyterLab
opens on the series' first page. Needs ``pip install -e ".[binder]"`` (CI installs it);
``--no-build`` needs no Docker daemon."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

repo2docker = pytest.importorskip("repo2docker", reason='needs pip install -e ".[binder]"')
pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
START_PAGE = "notebooks/00_start_here.ipynb"


def test_repo2docker_picks_the_python_buildpack_with_python_pinned(monkeypatch):
    from repo2docker.app import Repo2Docker

    monkeypatch.chdir(ROOT)
    app = Repo2Docker()
    picked = next(
        bp for bp in (BP(base_image=app.base_image) for BP in app.buildpacks) if bp.detect()
    )
    assert type(picked).__name__ == "PythonBuildPack"
    assert picked.binder_dir == "binder"  # binder/ wins over the top-level files
    assert picked.python_version == (BINDER / "runtime.txt").read_text().strip()[len("python-") :]
    assert picked.python_version == "3.12"


def test_repo2docker_debug_output_shows_the_python_the_install_and_the_start_page(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--debug", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=100,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Building conda environment for python=3.12" in output
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in output
    assert "./binder/postBuild" in output


def test_the_requirements_install_this_package_with_the_class_constraints():
    lines = [
        line.strip()
        for line in (BINDER / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["-c ../constraints.txt", "-e ."]
    assert (ROOT / "constraints.txt").exists()


@pytest.mark.skipif(
    sys.platform == "win32" or not shutil.which("bash"),
    reason="postBuild is a bash script (Binder runs Linux)",
)
def test_postbuild_makes_jupyterlab_open_on_the_first_page(tmp_path):
    done = subprocess.run(
        ["bash", str(BINDER / "postBuild")],
        cwd=ROOT,
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    config = (tmp_path / ".jupyter" / "jupyter_server_config.py").read_text()
    namespace = {"c": _Config()}
    exec(config, namespace)
    assert namespace["c"].ServerApp.default_url == f"/lab/tree/{START_PAGE}"
    assert (ROOT / START_PAGE).exists()


class _Config:
    """Enough of traitlets' config object for ``c.ServerApp.default_url = ...``."""

    def __init__(self):
        self.ServerApp = type("ServerApp", (), {})()
