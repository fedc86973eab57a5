"""The poll-interval explorer: pick an interval, measure, watch the trade-off plot grow.

Usage (in a cell tagged ``nbval-ignore-output``)::

    explorer = PollIntervalExplorer(reference=results)   # results of poll_interval_sweep
    explorer                                 # slider (ms, log scale), "busy", Measure, plot

Each click on **Measure** starts a polling server sleeping that interval between rounds,
measures its CPU share with idle clients connected and the latency of a few requests (from
the client process, see :mod:`nbio_helpers.measure`), stops it, and adds a point to the
CPU-vs-latency plot (see :func:`~nbio_helpers.measure.plot_tradeoff`), ringed in orange over
the ``reference`` points (a sweep made earlier), if any.
A measurement takes about one second and never more than :attr:`PollIntervalExplorer.bound`;
it runs in a background thread, so the kernel stays free, and the button is disabled
meanwhile. From code (tests, or a cell driving the widget)::

    explorer.slider.value = 10               # milliseconds
    explorer.measure()                       # same as a click, but waits for the result
    explorer.points[-1]["median"]            # seconds
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import math
import threading

import ipywidgets as widgets

from nbio_helpers.measure import plot_tradeoff, poll_interval_sweep

_threads = itertools.count(1)


class PollIntervalExplorer(widgets.VBox):
    """Slider + busy toggle + Measure button + live trade-off plot.

    Parameters
    ----------
    clients:
        Idle clients connected while measuring (each round polls them all).
    cpu_seconds:
        CPU measuring window of one measurement.
    latency_seconds:
        Hard bound of the latency part of one measurement.
    make_server:
        ``make_server(interval) -> Server`` (not started); default: a
        :class:`~nbio_helpers.models.PollingServer` without event recording.
    reference:
        Points measured before (the list :func:`~nbio_helpers.measure.poll_interval_sweep`
        returns), drawn at once, under the learner's own points; **Clear** keeps them.

    Attributes
    ----------
    slider, busy, button, clear_button, status, output:
        The widgets (DOM classes ``nbio-explorer-slider``, ``nbio-explorer-measure``,
        ``nbio-explorer-output``; the box is ``nbio-poll-explorer``).
    points:
        One dict per measurement, as returned by :func:`~nbio_helpers.measure.poll_interval_sweep`.
    reference:
        The ``reference`` points (a list, possibly empty).
    """

    def __init__(
        self,
        *,
        clients: int = 5,
        cpu_seconds: float = 0.3,
        latency_seconds: float = 0.6,
        make_server=None,
        reference=(),
    ):
        self.slider = widgets.FloatLogSlider(
            value=1.0,
            base=10,
            min=-2,
            max=2,
            step=0.25,
            description="interval (ms)",
            readout_format=".2g",
            continuous_update=False,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="45%"),
        )
        self.busy = widgets.ToggleButton(
            value=False, description="busy (0 ms)", tooltip="no sleep at all between rounds"
        )
        self.button = widgets.Button(description="Measure", button_style="primary", icon="play")
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        self.status = widgets.HTML(value=self._note("choose an interval, then Measure"))
        self.output = widgets.Output()
        super().__init__(
            [
                widgets.HBox([self.slider, self.busy, self.button, self.clear_button]),
                self.status,
                self.output,
            ]
        )
        self.add_class("nbio-poll-explorer")
        self.slider.add_class("nbio-explorer-slider")
        self.button.add_class("nbio-explorer-measure")
        self.output.add_class("nbio-explorer-output")
        self.clients = clients
        self.cpu_seconds = cpu_seconds
        self.latency_seconds = latency_seconds
        self.make_server = make_server
        self.points: list[dict] = []
        self.reference: list[dict] = list(reference)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.button.on_click(lambda _button: self.start_measure())
        self.clear_button.on_click(lambda _button: self.clear())
        self.busy.observe(lambda change: setattr(self.slider, "disabled", change["new"]), "value")
        if self.reference:
            self.redraw()
            self.status.value = self._note(
                "the dots are the sweep above: choose an interval, then Measure to add your own"
            )

    # ------------------------------------------------------------------ actions
    @property
    def interval(self) -> float:
        """The chosen interval in seconds (0 when "busy" is on)."""
        return 0.0 if self.busy.value else self.slider.value / 1e3

    @property
    def bound(self) -> float:
        """Seconds one measurement may take at most: the CPU window (at least three rounds,
        aligned on rounds), the latency, and 0.3 s to start and stop the server (and the
        client process, the first time)."""
        longest = 10**self.slider.max / 1e3
        return max(self.cpu_seconds, 3 * longest) + 2 * longest + self.latency_seconds + 0.3

    @property
    def measuring(self) -> bool:
        """True while a measurement runs."""
        return self._lock.locked()

    def measure(self, interval: float | None = None) -> dict:
        """Measure one interval (seconds; default: the widget's) now, in this thread.

        Adds the point to :attr:`points` and redraws the plot; returns the point. Raises
        ``RuntimeError`` if a measurement is already running, and whatever the measurement
        raised (a click shows it in the widget instead).
        """
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("a measurement is already running")
        try:
            return self._measure(self.interval if interval is None else interval)
        finally:
            self._lock.release()

    def start_measure(self) -> bool:
        """What a click does: measure in a background thread. False if one is running."""
        if not self._lock.acquire(blocking=False):
            return False
        interval = self.interval
        self.button.disabled = True
        self.status.value = self._note(f"measuring {_label(interval)}…")
        self._thread = threading.Thread(
            target=self._background,
            args=(interval,),
            daemon=True,
            name=f"nbio-explorer-{next(_threads)}",
        )
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background measurement to end; True if none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(self.bound + 5 if timeout is None else timeout)
        return not self.measuring

    def clear(self) -> None:
        """Forget every measured point (the ``reference`` points stay) and redraw."""
        self.points = []
        if self.reference:
            self.redraw()
        else:
            self.output.outputs = ()
        self.status.value = self._note("cleared: choose an interval, then Measure")

    # ------------------------------------------------------------------ internals
    def _background(self, interval: float) -> None:
        try:
            self._measure(interval)
        except Exception as exc:  # shown in the widget: a background thread must not raise
            self.status.value = self._note(
                f"measurement failed: {type(exc).__name__}: {exc}", error=True
            )
        finally:
            self._lock.release()
            self.button.disabled = False

    def _measure(self, interval: float) -> dict:
        # One window, one latency series: a click must answer within about a second.
        point = poll_interval_sweep(
            [interval],
            seconds=self.cpu_seconds,
            clients=self.clients,
            repeat=1,
            trials=1,
            latency_budget=self.latency_seconds * 0.6,
            timeout=self.latency_seconds,
            make_server=self.make_server,
        )[0]
        self.points.append(point)
        self.redraw()
        self.status.value = self._note(
            f"{_label(interval)}: CPU {point['cpu']:.1%} of a core, median latency "
            f"{point['median'] * 1e3:.3g} ms (theory {point['theory'] * 1e3:.3g} ms), "
            f"{point['tail_name']} {point['tail'] * 1e3:.3g} ms — {len(self.points)} point(s)"
        )
        return point

    def redraw(self) -> None:
        """Draw :attr:`points` (and the reference sweep) again in the plot below the
        slider; a measurement does it by itself."""
        # A Figure without pyplot: drawing from a thread must not show up in a cell's output.
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 4.2), dpi=100)
        ax = fig.add_subplot()
        if not self.reference:
            plot_tradeoff(self.points, ax=ax, title="Your measurements")
        else:
            plot_tradeoff(
                self.reference + self.points,
                ax=ax,
                title="Your measurements (ringed), with the sweep",
            )
            mine = [
                (p["median"] * 1e3, max(p["cpu"], 1e-3))
                for p in self.points
                if _finite(p["median"]) and _finite(p["cpu"])
            ]
            if mine:
                ax.plot(
                    *zip(*mine),
                    "o",
                    ms=13,
                    mfc="none",
                    mec="tab:orange",
                    mew=2.2,
                    zorder=4,
                    label="your measurements",
                )
                ax.legend(loc="lower left", fontsize=9)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        png = base64.b64encode(buffer.getvalue()).decode("ascii")
        # Replacing the outputs (not `with output:`) is safe from a background thread.
        text = f"<trade-off plot, {len(self.points)} points measured here>"
        self.output.outputs = (
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"image/png": png, "text/plain": text},
            },
        )

    @staticmethod
    def _note(text: str, error: bool = False) -> str:
        color = "#b00020" if error else "inherit"
        return f"<span style='color:{color}'>{html.escape(text)}</span>"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _label(interval: float) -> str:
    return "busy polling (0 ms)" if interval == 0 else f"interval {interval * 1e3:.3g} ms"


__all__ = ["PollIntervalExplorer"]
