"""Run All twice in one kernel leaves no extra thread and no extra open descriptor.

A learner re-runs a notebook top to bottom many times in the same kernel; every server,
thread, widget connection and socket the first run made must be gone by its last cell.
"""

import sys
from pathlib import Path

import nbformat
import pytest
from kernels import kernel_manager
from nbclient import NotebookClient

# Not ``alone``, though it executes notebooks that assert what they measure: it runs them with
# allow_errors and asserts only the counts of threads and descriptors, which a loaded machine
# does not change (a measured claim that fails under load fails its cell, not this test).
# Running beside other tests, its kernel takes no TCP port (tests/kernels.py).

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

PROBE = """\
import os, threading
print(threading.active_count(), len(os.listdir('/proc/self/fd')))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", ["01_blocking_recv.ipynb", "03_polling_loop.ipynb"])
def test_run_all_twice_leaves_nothing_behind(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    probe = nbformat.v4.new_code_cell(PROBE)
    twice = nbformat.v4.new_notebook(metadata=nb.metadata)
    twice.cells = [*nb.cells, probe, *[nbformat.from_dict(c) for c in nb.cells], probe.copy()]
    manager = kernel_manager()
    client = NotebookClient(
        twice,
        km=manager,
        timeout=120,
        allow_errors=True,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()
    finally:  # nbclient leaves a kernel manager it was given running
        if client.kc is not None:
            client.kc.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    probes = [c for c in twice.cells if c.cell_type == "code" and c.source == PROBE]
    first, second = ("".join(o.get("text", "") for o in c.outputs).split() for c in probes)
    threads_first, fds_first = map(int, first)
    threads_second, fds_second = map(int, second)
    assert threads_second <= threads_first, f"threads: {threads_first} -> {threads_second}"
    assert fds_second <= fds_first, f"open descriptors: {fds_first} -> {fds_second}"
