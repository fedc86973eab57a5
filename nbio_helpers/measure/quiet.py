"""Measuring windows without garbage-collection pauses.

A full collection (generation 2) walks every object of the process; in a Jupyter kernel, with
IPython and matplotlib loaded, it takes tens of milliseconds, in whichever thread happens to
trigger it, holding the GIL meanwhile: a server thread stops answering for that long (measured
here: a 94 ms collection in a ``select`` server's thread emptied a 50 ms throughput window).
It falls into one model's window by chance, not because of the model. So, as ``timeit`` does,
the automatic collector is paused while a measurement runs::

    with gc_paused():
        ...   # measure

Reference counting still frees almost everything a server allocates; only cycles wait for
the collector, which runs again as soon as the last measurement ends. Nested and concurrent
uses (a widget measuring in a thread while a cell measures) share one pause.
"""

from __future__ import annotations

import contextlib
import gc
import threading

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def gc_paused():
    """Pause Python's automatic garbage collector within the block (if it was enabled)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
