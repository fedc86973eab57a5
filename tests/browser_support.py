"""Support for tests/test_browser.py: a throw-away JupyterLab server and a headless Chromium.

Usage (what the test's session fixtures do)::

    with JupyterLab(notebooks_dir(), workdir, log_path) as lab:    # a subprocess on 127.0.0.1
        lab.url("lab/tree/01_blocking_recv.ipynb")                 # with the token
    browser = launch_chromium(playwright, find_chromium())          # headless, loopback only

Nothing here touches the repository's notebooks (the server's root is a temporary copy) or the
user's Jupyter, IPython and matplotlib settings (every per-user location points into ``workdir``).

Environment variables:
    NBIO_CHROMIUM            the Chromium/Chrome binary (default: ``chromium`` on PATH)
    NBIO_BROWSER_NOTEBOOKS   a folder of notebooks to test instead of the repo's notebooks/
    NBIO_BROWSER_ARTIFACTS   where screenshots and logs go (default: test-artifacts/browser/)
    NBIO_BROWSER_RUN_TIMEOUT seconds all cells of one notebook may take (default: 120)
    CI                       ``true``: a missing browser fails the test instead of skipping it
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]

INSTALL_HINT = (
    "install Chromium (`apt-get install chromium` on Debian/Ubuntu) or set "
    "NBIO_CHROMIUM=/path/to/chromium; the Python package is `pip install -e .[test]`"
)

# Headless, and off the network: only loopback resolves, no background services phone home.
CHROMIUM_ARGS = [
    "--no-sandbox",  # needed as root (CI runs as root)
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]

# User settings of the temporary JupyterLab (file name -> settings), see the Known pitfalls of
# the browser-test issue: a news toast can cover buttons; with windowing, off-screen cells are
# not in the page; without auto-start a "Select Kernel" dialog waits forever.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
}


def in_ci() -> bool:
    """True under CI (``CI=true``), where a missing browser is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def notebooks_dir() -> Path:
    """The folder of notebooks to run: ``NBIO_BROWSER_NOTEBOOKS``, or the repo's notebooks/."""
    override = os.environ.get("NBIO_BROWSER_NOTEBOOKS")
    return Path(override).resolve() if override else REPO / "notebooks"


def notebook_paths() -> list[Path]:
    """Every notebook to test, sorted by name (empty if there are none yet)."""
    return sorted(notebooks_dir().glob("*.ipynb"))


def artifacts_dir() -> Path:
    """Where screenshots and logs are written (not committed: test-artifacts/ is gitignored)."""
    override = os.environ.get("NBIO_BROWSER_ARTIFACTS")
    return Path(override).resolve() if override else REPO / "test-artifacts" / "browser"


def find_chromium() -> str | None:
    """The Chromium binary to drive: ``NBIO_CHROMIUM`` if set, else chromium on PATH, or None."""
    override = os.environ.get("NBIO_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_chromium(playwright, executable: str):
    """Launch the system Chromium headless through Playwright (nothing is downloaded)."""
    return playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


class JupyterLabError(RuntimeError):
    """The JupyterLab server did not start, or died."""


class JupyterLab:
    """A JupyterLab server in a subprocess, rooted at a temporary copy of a notebooks folder.

    ``start()`` copies ``source`` to ``workdir/root``, starts the server on 127.0.0.1 with a
    random token and a free port (``--port=0``; the port is read from the server's
    ``jpserver-<pid>.json`` runtime file) and waits until ``/api/status`` answers.
    ``stop()`` always leaves nothing behind: POST ``/api/shutdown`` (stops kernels too), then
    terminate, then kill, the server and every process it started. Use it as a context manager.

    Parameters
    ----------
    source : the notebooks folder to copy (never modified).
    workdir : an empty temporary folder; all per-user Jupyter/IPython/matplotlib dirs go here.
    log_path : file receiving the server's (and its kernels') stdout and stderr.
    """

    def __init__(self, source: Path, workdir: Path, log_path: Path):
        self.source = Path(source)
        self.workdir = Path(workdir)
        self.root = self.workdir / "root"
        self.log_path = Path(log_path)
        self.token = secrets.token_hex(24)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._log = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> JupyterLab:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> None:
        """Start the server and wait until it answers; raise JupyterLabError if it cannot."""
        shutil.copytree(
            self.source,
            self.root,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
        env = self._environment()
        self._write_settings(Path(env["JUPYTERLAB_SETTINGS_DIR"]))
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open while the server runs
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        atexit.register(self.stop)  # the backstop if the session ends without teardown
        deadline = time.monotonic() + timeout
        self.port = self._wait_for_port(Path(env["JUPYTER_RUNTIME_DIR"]), deadline)
        self._wait_for_status(deadline)

    def stop(self) -> None:
        """Shut the server and its kernels down; idempotent, never raises."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                family = psutil.Process(proc.pid).children(recursive=True)  # kernels
            except psutil.Error:
                family = []
            if proc.poll() is None:
                try:
                    self.api("POST", "api/shutdown", timeout=5)
                except (OSError, urllib.error.URLError):
                    pass
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            _end_processes(family)
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- talking to it -----------------------------------------------------------------------
    def url(self, path: str = "", with_token: bool = True) -> str:
        """``http://127.0.0.1:PORT/<path>``, with ``token=`` added to log the browser in."""
        url = f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"
        if with_token:
            url += ("&" if "?" in url else "?") + f"token={self.token}"
        return url

    def api(self, method: str, path: str, timeout: float = 10.0):
        """Call the REST API; return the decoded JSON answer (None if empty)."""
        request = urllib.request.Request(
            self.url(path, with_token=False),
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method in {"POST", "PUT"} else None,
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def shutdown_kernels_of(self, notebook_name: str) -> None:
        """Delete the sessions (and so the kernels) of one notebook, to free CPU for the next."""
        for session in self.api("GET", "api/sessions"):
            if Path(session.get("path", "")).name == notebook_name:
                self.api("DELETE", f"api/sessions/{session['id']}", timeout=30)

    def log_size(self) -> int:
        """Bytes written to the log so far (to read what one notebook added)."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        """The log text written after ``offset``."""
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_since(0) if self.log_path.exists() else ""
        return text[-chars:]

    # -- internals ---------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        """The server's environment: every per-user location inside ``workdir``."""
        env = dict(os.environ)
        for name in (
            "JUPYTER_CONFIG_DIR",
            "JUPYTER_DATA_DIR",
            "JUPYTER_RUNTIME_DIR",
            "JUPYTERLAB_SETTINGS_DIR",
            "JUPYTERLAB_WORKSPACES_DIR",
            "IPYTHONDIR",
            "MPLCONFIGDIR",
        ):
            folder = self.workdir / name.lower()
            folder.mkdir(parents=True, exist_ok=True)
            env[name] = str(folder)
        # The kernelspec must come from the environment running the tests: put its share/jupyter
        # first, whatever JUPYTER_PATH or JUPYTER_PREFER_ENV_PATH the user has.
        env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
        env.pop("JUPYTER_CONFIG_PATH", None)
        env.pop("MPLBACKEND", None)  # the kernel must use the inline backend, as a learner's does
        env["PYTHONUNBUFFERED"] = "1"
        return env

    @staticmethod
    def _write_settings(settings_dir: Path) -> None:
        for name, values in LAB_SETTINGS.items():
            path = settings_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=2))

    def _check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise JupyterLabError(
                f"JupyterLab exited early; its log ({self.log_path}):\n{self.log_tail()}"
            )

    def _wait_for_port(self, runtime_dir: Path, deadline: float) -> int:
        info_file = runtime_dir / f"jpserver-{self.proc.pid}.json"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                return int(json.loads(info_file.read_text())["port"])
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)  # the server writes the file once it listens
        raise JupyterLabError(
            f"no {info_file.name} after the start timeout; log:\n{self.log_tail()}"
        )

    def _wait_for_status(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                self.api("GET", "api/status", timeout=5)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise JupyterLabError(f"/api/status did not answer in time; log:\n{self.log_tail()}")


def _end_processes(processes: list) -> None:
    """Terminate, then kill, whatever of ``processes`` is still running."""
    alive = [p for p in processes if _running(p)]
    for p in alive:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(alive, timeout=5)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


def _running(process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
