"""Every notebook, run in a real JupyterLab in headless Chromium, as a learner would.

For each notebook in notebooks/ (collected when pytest starts, so a new notebook is covered the
day it lands): open it, run every cell, use its widgets (the client console answers in upper
case; a measurement widget's slider moves and its button updates the plot or table), then
check that no cell shows an error (unless tagged ``raises-exception``), every figure is an
image and every widget rendered. Screenshots and logs go to test-artifacts/browser/, one of
each per notebook. The notebooks share one JupyterLab server and one page (JupyterLab loads
once): each is opened in it, run, checked, closed and its kernel shut down; after a notebook
with a problem, the next one gets a freshly loaded page.

Run only this test::

    pytest -m browser                      # or: pytest tests/test_browser.py
    NBIO_BROWSER_NOTEBOOKS=dir pytest -m browser   # test another folder of notebooks

Needs Chromium (`apt-get install chromium`, or NBIO_CHROMIUM=/path/to/chromium) and the
Playwright Python package (the `test` extra); no browser is downloaded. Without Chromium the
test is skipped, except under CI=true where that is a failure.
"""

from __future__ import annotations

import os

import pytest
from browser_notebook import LabPage, NotebookRun
from browser_support import (
    INSTALL_HINT,
    JupyterLab,
    artifacts_dir,
    find_chromium,
    in_ci,
    launch_chromium,
    notebook_paths,
    notebooks_dir,
)

pytestmark = [pytest.mark.alone, pytest.mark.browser]

NOTEBOOKS = notebook_paths()
NO_NOTEBOOKS = pytest.param(
    None, marks=pytest.mark.skip(reason=f"no notebooks in {notebooks_dir()} yet"), id="no-notebooks"
)


def _unavailable(reason: str):
    message = f"browser test: {reason}; {INSTALL_HINT}"
    if in_ci():
        pytest.fail(f"{message} (under CI=true a missing browser is a failure)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def artifacts():
    """test-artifacts/browser/, for this session's screenshots and logs (files overwritten)."""
    folder = artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "timings.txt").write_text("", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (the system binary), launched once for this module.

    Module-scoped, not session-scoped: while Playwright's sync API is open, its event loop
    counts as running in the main thread, and a later test that runs an asyncio loop there
    would fail ("Cannot run the event loop while another loop is running")."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    executable = find_chromium()
    if executable is None:
        _unavailable(
            f"NBIO_CHROMIUM={os.environ['NBIO_CHROMIUM']} is not an executable"
            if os.environ.get("NBIO_CHROMIUM")
            else "no chromium found on PATH"
        )
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, executable)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, artifacts):
    """JupyterLab on 127.0.0.1 serving a temporary copy of the notebooks; always shut down."""
    with JupyterLab(
        notebooks_dir(), tmp_path_factory.mktemp("jupyterlab"), artifacts / "jupyterlab.log"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def lab_page(browser):
    """The JupyterLab page the notebooks run in one after the other (see LabPage)."""
    shared = LabPage(browser)
    try:
        yield shared
    finally:
        shared.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "notebook", [pytest.param(path, id=path.stem) for path in NOTEBOOKS] or [NO_NOTEBOOKS]
)
def test_notebook_runs_in_jupyterlab(notebook, browser, lab, lab_page, artifacts):
    run = NotebookRun(browser, lab, notebook, artifacts, lab_page)
    problems = run.execute()
    print(run.summary())
    for line in run.interactions:
        print("  " + line)
    for text in run.dialogs:
        print("  dialog dismissed: " + text)
    with open(artifacts / "timings.txt", "a", encoding="utf-8") as timings:
        timings.write(run.summary() + "\n")
    if problems:
        pytest.fail(
            f"{notebook.name} in JupyterLab:\n- "
            + "\n- ".join(problems)
            + f"\nscreenshot: {run.screenshot}\nconsole log: {run.console_log}"
            f"\nserver log: {lab.log_path}",
            pytrace=False,
        )
