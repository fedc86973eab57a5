"""Drive one notebook in JupyterLab as a learner would, and list what went wrong.

Usage (what tests/test_browser.py does)::

    run = NotebookRun(browser, lab, Path("notebooks/03_polling_loop.ipynb"), artifacts)
    problems = run.execute()     # [] when the notebook is fine; a screenshot is saved anyway
    run.timings                  # {"open": s, "run": s, "check": s, "save": s, "close": s,
                                 #  "total": s}

    # One JupyterLab page for several notebooks, run one after the other (each closed and its
    # kernel shut down after its run; a run with a problem discards the page, so that the next
    # notebook starts in a freshly loaded one):
    shared = LabPage(browser)
    for path in paths:
        problems = NotebookRun(browser, lab, path, artifacts, shared).execute()
    shared.close()

``execute()`` opens the notebook (in a fresh browser context, or, given a :class:`LabPage`, in
the JupyterLab page that the notebooks before it used: JupyterLab loads once, not once per
notebook), dismisses dialogs, waits for the kernel, runs every cell top to bottom, uses every
widget the series defines (the client console and the measurement widgets, found by their DOM
classes), then checks every cell: execution counts 1..n, no error output unless tagged
``raises-exception``, figures drawn as images, widgets rendered, no error raised by a widget
callback.

Cells run one after the other, each with ``notebook:run-cell`` (Shift+Enter without moving on),
and the page paints a cell's outputs before the next cell starts. ``notebook:run-all-cells``
sends every cell at once, so Chromium renders earlier outputs while later cells measure: on a
2-core machine the notebooks' measured claims (e.g. busy polling > 0.8 core) then fail. As with
Run All, an error stops the run unless the cell is tagged ``raises-exception``. A cell that
displays a client console or a measurement widget ends a segment: the widget is used before
the next cell runs, since a later cell (at the latest ``finish()``) stops its server.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
from pathlib import Path

# s, all cells of one notebook (NBIO_BROWSER_RUN_TIMEOUT overrides it, for a slow machine)
RUN_TIMEOUT = float(os.environ.get("NBIO_BROWSER_RUN_TIMEOUT", "120"))
OPEN_TIMEOUT = 60.0  # s, page loaded and kernel idle
RENDER_TIMEOUT = 30.0  # s, widgets done loading after a run
INTERACTION_TIMEOUT = 60.0  # s, one widget answering one click

MAX_SHOT = 16000  # px, the tallest screenshot taken in one piece

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_LOADING = "Loading widget"
WIDGET_ERROR = "Error displaying widget"

# Widgets the test uses, by the DOM classes of the design brief.
CONSOLE = ".nbio-client-console"
CONSOLE_TEXT = ".nbio-client-text input, input.nbio-client-text, .nbio-client-text textarea"
CONSOLE_SEND = ".nbio-client-send"
CONSOLE_REPLY = ".nbio-client-reply"
MEASURE_BOX = ".nbio-poll-explorer, .nbio-measure-widget"
MEASURE_SLIDER = ".nbio-explorer-slider, .widget-slider"
MEASURE_BUTTON = ".nbio-explorer-measure, .nbio-measure-button"
MEASURE_OUTPUT = ".nbio-explorer-output, .nbio-measure-output"

# A cell displaying one of those widgets ends a run segment, so the widget is used while the
# servers started above it still run. Stored outputs say which cells display widgets; the
# source pattern covers a notebook saved without outputs.
INTERACTIVE_SOURCE = re.compile(r"ClientConsole|explorer|measure_widget", re.IGNORECASE)

# Resolves once the page has painted twice (after a layout change).
PAINTED = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
SCROLLER = (
    "(document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer') || "
    "document.querySelector('.jp-NotebookPanel .jp-Notebook'))"
)
# After the first screenshot (scrollTop 0), the scroll positions showing the rest.
SCROLL_OFFSETS = f"""() => {{
  const s = {SCROLLER};
  const cells = s.querySelectorAll('.jp-Cell');
  const last = cells[cells.length - 1].getBoundingClientRect().bottom;
  const maxY = last - s.getBoundingClientRect().top + s.scrollTop + 40 - s.clientHeight;
  const step = s.clientHeight - 40, offsets = [];
  for (let y = step; y - step < maxY; y += step) offsets.push(Math.min(y, maxY));
  return offsets;
}}"""

# Installed in the page as window.__nbio: reads JupyterLab's own models (exposed by
# --LabApp.expose_app_in_browser) rather than guessing from the DOM.
PAGE_HELPERS = r"""
() => {
  if (window.__nbio) return;
  const app = window.jupyterapp;
  const panelOf = (path) => {
    for (const w of app.shell.widgets('main')) {
      if (w.context && w.context.path === path && w.content && w.content.widgets) return w;
    }
    return null;
  };
  const kernelOf = (panel) => {
    const session = panel && panel.sessionContext.session;
    return session ? session.kernel : null;
  };
  window.__nbio = {
    run: null,
    iopubErrors: [],
    dialogs() {
      return Array.from(document.querySelectorAll('.jp-Dialog'))
          .map(d => d.innerText.slice(0, 300));
    },
    ready(path) {
      const panel = panelOf(path);
      const kernel = kernelOf(panel);
      return !!(panel && panel.context.isReady && kernel &&
                kernel.connectionStatus === 'connected' && kernel.status === 'idle');
    },
    forget() {
      // A new notebook in the same page: nothing of the previous run counts for it.
      window.__nbio.run = null;
      window.__nbio.iopubErrors = [];
    },
    close(path) {
      // Closes the notebook's panel without the "Save your work" dialog (the copy in the lab
      // folder is never saved); its kernel is shut down through the REST API afterwards.
      const panel = panelOf(path);
      if (!panel) return;
      panel.context.model.dirty = false;
      panel.dispose();
    },
    hook(path) {
      // Errors raised in widget callbacks reach no cell: catch them on the kernel's iopub.
      const panel = panelOf(path);
      if (panel.__nbioHooked) return;
      panel.__nbioHooked = true;
      panel.sessionContext.iopubMessage.connect((_, msg) => {
        if (msg.header.msg_type !== 'error') return;
        window.__nbio.iopubErrors.push({
          parent: msg.parent_header ? msg.parent_header.msg_type : null,
          error: `${msg.content.ename}: ${msg.content.evalue}`,
        });
      });
    },
    startRun(path, first, last) {
      // Runs the code cells first..last one after the other, as Shift+Enter would, and lets
      // the page paint each cell's outputs before the next cell starts (see _run_and_interact).
      const panel = panelOf(path);
      const notebook = panel.content;
      app.shell.activateById(panel.id);
      const run = window.__nbio.run = {done: false, command: 'notebook:run-cell', cell: null};
      const painted = () => new Promise(
          r => requestAnimationFrame(() => requestAnimationFrame(r)));
      (async () => {
        for (let i = first; i <= last; i++) {
          const cell = notebook.widgets[i];
          if (cell.model.type !== 'code') continue;   // markdown is rendered already
          run.cell = i;
          notebook.activeCellIndex = i;
          notebook.deselectAll();
          // Resolves once the reply and every output of the cell have arrived.
          const ok = await app.commands.execute('notebook:run-cell');
          await painted();
          const tags = cell.model.getMetadata('tags') || [];
          if (!ok && !tags.includes('raises-exception')) break;   // as Run All stops
        }
      })().then(() => { run.done = true; },
                err => { run.done = true; run.error = String(err); });
    },
    runState(path, first, last) {
      const panel = panelOf(path);
      const kernel = kernelOf(panel);
      const missing = [];
      panel.content.widgets.forEach((cell, i) => {
        const code = cell.model.type === 'code';
        if (i >= first && i <= last && code && cell.model.executionCount == null) missing.push(i);
      });
      return {run: window.__nbio.run, kernel: kernel ? kernel.status : 'no kernel', missing};
    },
    callbackErrors() {
      return window.__nbio.iopubErrors.filter(e => e.parent !== 'execute_request').length;
    },
    busyWidgets() {
      const text = document.body.innerText;
      return text.includes('Loading widget');
    },
    report(path) {
      const panel = panelOf(path);
      return panel.content.widgets.map((cell, i) => {
        cell.node.dataset.nbioIndex = String(i);
        const model = cell.model;
        const tags = model.getMetadata('tags') || [];
        const cellReport = {index: i, type: model.type, tags, count: null, outputs: [],
                            source: model.sharedModel.getSource().slice(0, 100)};
        if (model.type !== 'code') return cellReport;
        cellReport.count = model.executionCount;
        const children = Array.from(cell.outputArea.node.children)
            .filter(c => c.classList.contains('jp-OutputArea-child'));
        for (let j = 0; j < model.outputs.length; j++) {
          const output = model.outputs.get(j).toJSON();
          const data = output.data || {};
          const node = children[j] ? children[j].querySelector('.jp-OutputArea-output') : null;
          const text = node ? node.innerText : '';
          cellReport.outputs.push({
            type: output.output_type,
            error: output.output_type === 'error' ? `${output.ename}: ${output.evalue}` : null,
            traceback: output.output_type === 'error' ? (output.traceback || []).join('\n') : '',
            png: 'image/png' in data,
            widget: 'application/vnd.jupyter.widget-view+json' in data,
            rendered: !!node,
            images: node ? Array.from(node.querySelectorAll('img'))
                               .map(img => img.complete && img.naturalWidth > 0) : [],
            widgetViews: node ? node.querySelectorAll('.jupyter-widgets').length : 0,
            loading: text.includes('Loading widget'),
            widgetError: text.includes('Error displaying widget'),
          });
        }
        return cellReport;
      });
    },
    notebookHeight() {
      // The page height that shows every cell (JupyterLab scrolls inside the notebook).
      const scroller = __SCROLLER__;
      scroller.scrollTop = 0;
      const cells = scroller.querySelectorAll('.jp-Cell');
      const bottom = cells.length ? cells[cells.length - 1].getBoundingClientRect().bottom
                                  : scroller.getBoundingClientRect().top + scroller.scrollHeight;
      return Math.ceil(bottom + 80);
    },
  };
}
""".replace("__SCROLLER__", SCROLLER)


class LabPage:
    """One browser context and JupyterLab page, reused by the notebooks run one after the other.

    ``take()`` gives the page (a fresh one if there is none) and whether JupyterLab is loaded in
    it already; ``discard()`` closes it, so that the next ``take()`` starts afresh (a run with a
    problem discards it: the next notebook never inherits a broken page); ``close()`` at the end.
    """

    def __init__(self, browser):
        self.browser = browser
        self.context = None
        self.page = None
        self.loaded = False  # JupyterLab restored in the page, the page helpers installed

    def take(self):
        if self.page is None:
            self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
            self.page = self.context.new_page()
            self.loaded = False
        return self.page, self.loaded

    def discard(self) -> None:
        context, self.context, self.page, self.loaded = self.context, None, None, False
        if context is not None:
            context.close()

    close = discard


class NotebookRun:
    """One notebook, opened and run in JupyterLab; see the module docstring.

    Parameters
    ----------
    browser : a Playwright Browser (one per test session).
    lab : the running :class:`browser_support.JupyterLab` (its root holds a copy of notebook).
    notebook : path of the notebook as stored (its saved outputs say where figures and
        widgets are expected).
    artifacts : folder for the screenshot and the console log.
    shared : a :class:`LabPage` to run in (None: a fresh browser context, closed afterwards).
    """

    def __init__(
        self, browser, lab, notebook: Path, artifacts: Path, shared: LabPage | None = None
    ):
        self.browser = browser
        self.shared = shared
        self.lab = lab
        self.name = notebook.name
        self.stored = json.loads(notebook.read_text(encoding="utf-8"))
        self.artifacts = artifacts
        self.screenshot = artifacts / f"{notebook.stem}.png"
        self.console_log = artifacts / f"{notebook.stem}.console.log"
        self.problems: list[str] = []
        self.timings: dict[str, float] = {}
        self.dialogs: list[str] = []
        self.interactions: list[str] = []
        self._console: list[str] = []
        self.page = None

    # -- the whole run ---------------------------------------------------------------------
    def execute(self) -> list[str]:
        """Open, run, use the widgets, check; return the problems found ([] = all good)."""
        start = time.monotonic()
        log_offset = self.lab.log_size()
        shared = self.shared or LabPage(self.browser)
        # This run's console log only: the handlers are removed when it ends.
        handlers = {
            "console": lambda msg: self._console.append(f"{msg.type}: {msg.text}"),
            "pageerror": lambda err: self._console.append(f"pageerror: {err}"),
            "request": self._note_request,
        }
        try:
            self.page, loaded = shared.take()
            self.page.set_viewport_size({"width": 1280, "height": 900})
            for event, handler in handlers.items():
                self.page.on(event, handler)
            self._step("open", lambda: self._open(loaded))
            shared.loaded = not self.problems
            if not self.problems:
                self._step("run", self._run_and_interact)
                self._step("check", self._check_cells)  # also after a failed run: says why
                self._check_kernel_log(log_offset)
        finally:
            saving = time.monotonic()
            self._save_artifacts()
            self.timings["save"] = time.monotonic() - saving
            closing = time.monotonic()
            self._close_notebook(shared, handlers)
            try:
                self.lab.shutdown_kernels_of(self.name)
            except Exception as exc:
                self.problems.append(f"could not shut the kernel down: {exc}")
            self.timings["close"] = time.monotonic() - closing
            self.timings["total"] = time.monotonic() - start
        return self.problems

    def _close_notebook(self, shared: LabPage, handlers: dict) -> None:
        """Close this notebook's panel, keeping the page for the next notebook if all went well;
        after a problem (or without a shared page), close the browser context instead."""
        keep = self.shared is not None and not self.problems and self.page is not None
        if keep:
            try:
                self.page.evaluate("p => window.__nbio.close(p)", self.name)
                for event, handler in handlers.items():
                    self.page.remove_listener(event, handler)
            except Exception:
                keep = False
        if not keep:
            shared.discard()

    def _step(self, name: str, action) -> None:
        """Run one phase, time it; a timeout or page error becomes a problem in the report."""
        start = time.monotonic()
        try:
            action()
        except Exception as exc:
            self.problems.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            self.timings[name] = time.monotonic() - start

    # -- steps ------------------------------------------------------------------------------
    def _open(self, loaded: bool = False) -> None:
        """Load JupyterLab with the notebook open or, when it is loaded already (``loaded``),
        open the notebook in it as the file browser does."""
        page = self.page
        if loaded:
            page.evaluate("() => window.__nbio.forget()")
            page.evaluate(
                "async p => { await window.jupyterapp.commands.execute('docmanager:open', "
                "{path: p}); }",
                self.name,
            )
        else:
            page.goto(self.lab.url(f"lab/tree/{urllib.parse.quote(self.name)}?reset"))
            page.wait_for_function("() => window.jupyterapp", timeout=OPEN_TIMEOUT * 1000)
            page.evaluate("async () => { await window.jupyterapp.restored; }")
            page.evaluate(PAGE_HELPERS)
        if not self._wait_until(
            "p => window.__nbio.ready(p)", self.name, time.monotonic() + OPEN_TIMEOUT
        ):
            raise TimeoutError(f"the notebook or its kernel was not ready in {OPEN_TIMEOUT:.0f} s")
        self._dismiss_dialogs()
        page.evaluate("p => window.__nbio.hook(p)", self.name)

    def _dismiss_dialogs(self) -> None:
        """Accept any dialog (a "Select Kernel" dialog accepts the default kernel)."""
        for text in self.page.evaluate("() => window.__nbio.dialogs()"):
            self.dialogs.append(text.replace("\n", " | "))
            accept = self.page.locator(".jp-Dialog .jp-mod-accept")
            if accept.count():
                accept.first.click()
            else:
                self.page.keyboard.press("Escape")

    def _segments(self) -> list[tuple[int, int]]:
        """Cell ranges to run one after the other: each ends with a widget-displaying cell."""
        cells = self.stored["cells"]
        ends = [
            i
            for i, cell in enumerate(cells)
            if cell["cell_type"] == "code"
            and (
                any(WIDGET_MIME in out.get("data", {}) for out in cell.get("outputs", []))
                or INTERACTIVE_SOURCE.search("".join(cell["source"]))
            )
        ]
        ranges, first = [], 0
        for end in ends + [len(cells) - 1]:
            if end >= first:
                ranges.append((first, end))
                first = end + 1
        return ranges

    def _run_and_interact(self) -> None:
        # Start from no outputs and no execution counts: whatever shows afterwards (and in the
        # screenshot) comes from this run, not from the saved file.
        self.page.evaluate(
            "async () => { await window.jupyterapp.commands.execute("
            "'notebook:clear-all-cell-outputs'); }"
        )
        stale = self.page.evaluate("p => window.__nbio.report(p)", self.name)
        stale = [c["index"] for c in stale if c["count"] is not None or c["outputs"]]
        if stale:
            raise AssertionError(f"cells {stale} kept their saved outputs after clearing")
        deadline = time.monotonic() + RUN_TIMEOUT
        for first, last in self._segments():
            self.page.evaluate(
                "([p, a, b]) => window.__nbio.startRun(p, a, b)", [self.name, first, last]
            )
            self._wait_for_run(first, last, deadline)
            self._wait_for_widgets()
            self._interact(first, last)

    def _wait_for_run(self, first: int, last: int, deadline: float) -> None:
        args = [self.name, first, last]
        self._wait_until(
            """([p, a, b]) => {
                              const state = window.__nbio.runState(p, a, b);
                              return state.run && state.run.done && state.kernel === 'idle';
                            }""",
            args,
            deadline,
        )
        state = self.page.evaluate("([p, a, b]) => window.__nbio.runState(p, a, b)", args)
        run = state["run"] or {}
        if not run.get("done"):
            raise TimeoutError(
                f"cells not done after {RUN_TIMEOUT:.0f} s: cell {run.get('cell')} "
                f"still running, cells {state['missing']} waiting, kernel "
                f"{state['kernel']}"
            )
        if state["missing"]:
            raise AssertionError(
                f"cells {state['missing']} never ran (an error above stops the run, as Run All "
                f"does){self._first_error_hint()}{run.get('error') or ''}"
            )

    def _wait_until(self, predicate: str, arg, deadline: float) -> bool:
        """Wait for a page predicate, dismissing dialogs meanwhile; False at the deadline."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self.page.wait_for_function(
                    predicate, arg=arg, polling=100, timeout=min(left, 1.0) * 1000
                )
                return True
            except PlaywrightTimeout:
                self._dismiss_dialogs()  # e.g. a "Select Kernel" dialog blocks the kernel

    def _first_error_hint(self) -> str:
        for cell in self.page.evaluate("p => window.__nbio.report(p)", self.name):
            for out in cell["outputs"]:
                if out["error"]:
                    return f"; cell {cell['index']} raised {out['error']}"
        return ""

    def _wait_for_widgets(self) -> None:
        try:
            self.page.wait_for_function(
                "() => !window.__nbio.busyWidgets()", timeout=RENDER_TIMEOUT * 1000, polling=200
            )
        except Exception:
            self.problems.append(f"'{WIDGET_LOADING}...' still shown after {RENDER_TIMEOUT:.0f} s")

    # -- widgets ----------------------------------------------------------------------------
    def _interact(self, first: int, last: int) -> None:
        self.page.evaluate("p => window.__nbio.report(p)", self.name)  # tags cells with indexes
        for index in range(first, last + 1):
            cell = self.page.locator(f'[data-nbio-index="{index}"]')
            for k in range(cell.locator(CONSOLE).count()):
                self._use_console(cell.locator(CONSOLE).nth(k), f"cell {index} console {k}")
            for k in range(cell.locator(MEASURE_BOX).count()):
                self._use_measure_widget(
                    cell.locator(MEASURE_BOX).nth(k), f"cell {index} measurement widget {k}"
                )
        # The callbacks are done before the next cell runs.
        if not self._wait_until(
            "p => window.__nbio.runState(p, 0, -1).kernel === 'idle'",
            self.name,
            time.monotonic() + INTERACTION_TIMEOUT,
        ):
            self.problems.append(
                f"the kernel was still busy {INTERACTION_TIMEOUT:.0f} s after "
                f"the widgets of cells {first}..{last} were used"
            )

    def _use_console(self, console, label: str) -> None:
        """Send with the button, then with Enter; each time the upper-cased echo must show."""
        console.scroll_into_view_if_needed()
        for how in ("Send", "Enter"):
            message = f"hello from the browser, {label}, {how}"
            expected = message.upper()
            try:
                text = console.locator(CONSOLE_TEXT).first
                text.fill(message)
                errors = self.page.evaluate("() => window.__nbio.callbackErrors()")
                if how == "Send":
                    console.locator(CONSOLE_SEND).first.click()
                else:
                    text.press("Enter")
                self.page.wait_for_function(
                    """([box, expected, errors]) => {
                         if (window.__nbio.callbackErrors() > errors) return true;
                         const reply = box.querySelector('.nbio-client-reply');
                         if (!reply) return false;
                         const values = Array.from(reply.querySelectorAll('input, textarea'))
                             .map(e => e.value).join(' ');
                         return (reply.innerText + ' ' + values).includes(expected);
                       }""",
                    arg=[console.element_handle(), expected, errors],
                    timeout=INTERACTION_TIMEOUT * 1000,
                )
                self._raise_if_callback_failed(errors)
                self.interactions.append(
                    f"{label}: typed {message!r}, pressed {how}, the reply shows {expected!r}"
                )
            except Exception as exc:
                reply = _text_of(console.locator(CONSOLE_REPLY))
                self.problems.append(
                    f"{label}: typed {message!r} and pressed {how}, expected "
                    f"{expected!r} in the reply area, saw {reply!r} "
                    f"({type(exc).__name__}: {_first_line(exc)})"
                )

    def _use_measure_widget(self, box, label: str) -> None:
        try:
            box.scroll_into_view_if_needed()
            moved = self._move_slider(box, label)
            output = box.locator(MEASURE_OUTPUT).first
            before = output.inner_html()
            errors = self.page.evaluate("() => window.__nbio.callbackErrors()")
            box.locator(MEASURE_BUTTON).first.click()
            self.page.wait_for_function(
                """([out, before, errors]) => {
                     if (window.__nbio.callbackErrors() > errors) return true;
                     if (out.innerHTML === before) return false;
                     const images = Array.from(out.querySelectorAll('img'));
                     const drawn = images.length > 0 &&
                         images.every(i => i.complete && i.naturalWidth > 0);
                     return drawn || out.querySelector('table') !== null ||
                            (images.length === 0 && out.innerText.trim().length > 0);
                   }""",
                arg=[output.element_handle(), before, errors],
                timeout=INTERACTION_TIMEOUT * 1000,
            )
            self._raise_if_callback_failed(errors)
            self._wait_until_enabled(box)
            self.interactions.append(f"{label}: {moved}clicked, output updated")
        except Exception as exc:
            self.problems.append(
                f"{label}: the output did not update after moving the slider "
                f"and clicking ({type(exc).__name__}: {_first_line(exc)}); "
                f"the widget shows: {_text_of(box)!r}"
            )
            try:
                self._wait_until_enabled(box)  # so that later cells do not fail because of it
            except Exception:
                pass

    def _wait_until_enabled(self, box) -> None:
        """As a learner would, wait for the button to be enabled again before going on (a
        widget measuring in the background disables it until it is done)."""
        self.page.wait_for_function(
            "button => !button.disabled",
            arg=box.locator(MEASURE_BUTTON).first.element_handle(),
            timeout=INTERACTION_TIMEOUT * 1000,
        )

    def _raise_if_callback_failed(self, errors_before: int) -> None:
        if self.page.evaluate("() => window.__nbio.callbackErrors()") > errors_before:
            raise AssertionError("its callback raised (see the error below)")

    def _move_slider(self, box, label: str) -> str:
        """Move the box's slider one step with the keyboard, as a learner can; say what moved."""
        sliders = box.locator(MEASURE_SLIDER)
        if not sliders.count():
            return ""
        slider = sliders.first
        handle = slider.locator(".noUi-handle").first
        readout = slider.locator(".widget-readout")

        def shown() -> str:  # the readout a learner sees, else the handle's ARIA value
            return (
                readout.first.inner_text().strip()
                if readout.count()
                else handle.get_attribute("aria-valuenow")
            )

        position, before = handle.get_attribute("aria-valuenow"), shown()
        handle.focus()
        for key in ("ArrowRight", "ArrowLeft"):  # at the maximum, ArrowRight does nothing
            handle.press(key)
            if handle.get_attribute("aria-valuenow") != position:
                return f"slider {before} -> {shown()}, "
        raise AssertionError(f"{label}: the slider did not move with the arrow keys")

    # -- checks -----------------------------------------------------------------------------
    def _check_cells(self) -> None:
        stored_cells = self.stored["cells"]
        report = self.page.evaluate("p => window.__nbio.report(p)", self.name)
        if len(report) != len(stored_cells):
            self.problems.append(
                f"the page shows {len(report)} cells, the file has {len(stored_cells)}"
            )
        counts = [c["count"] for c in report if c["type"] == "code"]
        if counts != list(range(1, len(counts) + 1)):
            self.problems.append(f"execution counts are {counts}, not 1..{len(counts)} in order")
        for cell, stored in zip(report, stored_cells):
            if cell["type"] != "code":
                continue
            first_line = (cell["source"].splitlines() or [""])[0][:60]
            where = f"cell {cell['index']} ({first_line!r})"
            outputs = cell["outputs"]
            for out in outputs:
                if out["error"] and "raises-exception" not in cell["tags"]:
                    self.problems.append(
                        f"{where}: error output {out['error']}{_failing_line(out['traceback'])}"
                    )
                if out["png"] and not any(out["images"]):
                    self.problems.append(f"{where}: a figure is not drawn as an image")
                if out["images"] and not all(out["images"]):
                    self.problems.append(f"{where}: an image did not load")
                if out["widget"] and (not out["widgetViews"] or out["loading"]):
                    self.problems.append(f"{where}: a widget is not rendered")
                if out["widgetError"]:
                    self.problems.append(f"{where}: '{WIDGET_ERROR}' shown")
            stored_pngs = sum("image/png" in o.get("data", {}) for o in stored.get("outputs", []))
            if stored_pngs and not any(any(out["images"]) for out in outputs):
                self.problems.append(
                    f"{where}: the saved notebook has a figure here, the page shows none"
                )
        for err in self.page.evaluate("() => window.__nbio.iopubErrors"):
            if err["parent"] != "execute_request":
                self.problems.append(
                    f"the kernel reported an error outside any cell (from a "
                    f"{err['parent']}, i.e. a widget callback): {err['error']}"
                )
        if self.page.evaluate("() => window.__nbio.busyWidgets()"):
            self.problems.append(f"'{WIDGET_LOADING}...' is shown in the page")
        if WIDGET_ERROR in self.page.inner_text("body"):
            self.problems.append(f"'{WIDGET_ERROR}' is shown in the page")

    def _check_kernel_log(self, offset: int) -> None:
        """Tracebacks the kernel logged itself (e.g. a failing widget observer) are failures."""
        text = self.lab.log_since(offset)
        for marker in ("Exception in comm", "Traceback (most recent call last)"):
            at = text.find(marker)
            if at >= 0:
                self.problems.append(
                    f"the server/kernel log has {marker!r}:\n{text[max(0, at - 300) : at + 1200]}"
                )
                return

    # -- artifacts --------------------------------------------------------------------------
    def _note_request(self, request) -> None:
        host = re.match(r"^[a-z]+://([^/:]+)", request.url)
        if host and host.group(1) not in {"127.0.0.1", "localhost"}:
            self._console.append(f"off-loopback request (blocked by the resolver): {request.url}")

    def _save_artifacts(self) -> None:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.console_log.write_text("\n".join(self._console) + "\n", encoding="utf-8")
        if self.page is not None:
            try:
                self._save_screenshots()
            except Exception as exc:
                self.problems.append(f"no screenshot: {type(exc).__name__}: {exc}")

    def _save_screenshots(self) -> None:
        """The whole notebook in ``<stem>.png`` (and ``<stem>.partN.png`` if very long)."""
        page = self.page
        height = page.evaluate("""() => {
            if (!window.__nbio) return 0;         // the page never got that far
            window.jupyterapp.shell.collapseLeft();
            return window.__nbio.notebookHeight();
          }""")
        page.set_viewport_size({"width": 1280, "height": max(900, min(height, MAX_SHOT))})
        page.evaluate(PAINTED)
        page.screenshot(path=str(self.screenshot))
        # Taller than a screenshot can be: scroll the notebook and take the next parts.
        part, offsets = 2, page.evaluate(SCROLL_OFFSETS) if height > MAX_SHOT else []
        for offset in offsets:
            page.evaluate(f"() => {{ {SCROLLER}.scrollTop = {offset}; }}")
            page.evaluate(PAINTED)
            page.screenshot(path=str(self.screenshot.with_suffix(f".part{part}.png")))
            part += 1

    def summary(self) -> str:
        """One line: the time each phase took, and what was used."""
        t = self.timings
        return (
            f"{self.name}: total {t.get('total', 0):.1f} s (open {t.get('open', 0):.1f} s, "
            f"run+widgets {t.get('run', 0):.1f} s, checks {t.get('check', 0):.1f} s, "
            f"screenshots {t.get('save', 0):.1f} s, close+kernel shutdown "
            f"{t.get('close', 0):.1f} s); "
            f"{len(self.interactions)} widget interaction(s); dialogs dismissed: "
            f"{len(self.dialogs)}"
        )


def _failing_line(traceback: str) -> str:
    """The line IPython marks with an arrow in a traceback (ANSI colours removed)."""
    arrows = [
        line.strip()
        for line in re.sub(r"\x1b\[[0-9;]*m", "", traceback).splitlines()
        if line.lstrip().startswith("---->") or line.lstrip().startswith("->")
    ]
    return f" at: {arrows[-1]}" if arrows else ""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _text_of(locator) -> str:
    try:
        return locator.first.inner_text(timeout=1000)[:300]
    except Exception:
        return "<nothing>"
