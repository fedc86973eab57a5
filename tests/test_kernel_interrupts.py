"""Interrupting a real Jupyter kernel in a tight start/stop loop leaves no server behind.

What a learner does: a cell starts and stops servers in a loop (``with PollingServer(...)``),
it runs too long, they press "interrupt". The kernel gets SIGINT at a random moment: inside
``start()``, inside ``stop()``, or between. Afterwards no nbio server may be registered and
no ``nbio-`` thread alive. Every model takes its turn; many trials, random moments.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import sys
import tempfile
import time

import pytest
from kernels import kernel_manager

jupyter_client = pytest.importorskip("jupyter_client")

pytestmark = pytest.mark.timeout(300)

SETUP = """\
import faulthandler, signal, threading
from nbio_helpers import MODELS, running_servers
faulthandler.register(signal.SIGUSR1, all_threads=True, file=open({stacks!r}, "w"))
"""
TIGHT_LOOP = """\
while True:
    with MODELS[{model!r}](name="tight") as server:
        server.address
"""
CHECK = """\
print(sorted(running_servers()), sorted(t.name for t in threading.enumerate()
                                        if t.name.startswith("nbio-") and t.is_alive()))
"""
MODELS = ("polling", "select", "selectors", "asyncio", "threads", "blocking")
PRESS_AGAIN_AFTER = 10.0
"""Seconds without a reply after which the test interrupts again. CPython can lose an
interrupt: when SIGINT's handler runs inside a weakref callback (a thread or a server's
CPU clock being collected: ``WeakSet._remove``), the KeyboardInterrupt it raises is
unraisable and only printed, and the loop goes on. Seen with ``sys.unraisablehook`` in the
kernel, in 2 trials of 150; a learner presses Stop again."""
MAX_LOST = 3
"""Lost first interrupts allowed in 30 trials (2 seen in 150)."""


def interrupt_trials(
    trials: int, seed: int = 5, env: dict | None = None
) -> tuple[list[str], list[str]]:
    """Run the tight loop ``trials`` times in one kernel, interrupt it after a random delay,
    and return what each trial left behind (an empty string when nothing), and the trials
    whose first interrupt was lost (see :data:`PRESS_AGAIN_AFTER`)."""
    rng = random.Random(seed)
    manager = kernel_manager()
    manager.start_kernel(env={**os.environ, **(env or {})})
    client = manager.client()
    client.start_channels()
    handle, stacks = tempfile.mkstemp(suffix=".txt", prefix="kernel-stacks-")
    os.close(handle)
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive(SETUP.format(stacks=stacks), timeout=60)
        left: list[str] = []
        lost: list[str] = []
        for trial in range(trials):
            model = MODELS[trial % len(MODELS)]
            msg_id = client.execute(TIGHT_LOOP.format(model=model), stop_on_error=False)
            _wait_until_it_runs(client, msg_id)
            time.sleep(rng.uniform(0.05, 0.4))
            manager.interrupt_kernel()
            reply = _reply_to(client, msg_id, PRESS_AGAIN_AFTER)
            if reply is None:  # lost (see PRESS_AGAIN_AFTER): press Stop again, as a learner does
                lost.append(f"trial {trial} ({model})")
                manager.interrupt_kernel()
                reply = _reply_to(client, msg_id, 60)
            if reply is None:
                raise AssertionError(
                    f"trial {trial} ({model}): no reply 60 s after a second interrupt; the "
                    f"kernel's threads:\n{_stacks_of(manager, stacks)}"
                )
            assert reply["content"]["status"] == "error", reply["content"]
            assert reply["content"]["ename"] == "KeyboardInterrupt", reply["content"]
            printed = []
            check = client.execute_interactive(
                CHECK,
                timeout=60,
                output_hook=lambda msg, printed=printed: printed.append(
                    msg["content"].get("text", "")
                ),
            )
            assert check["content"]["status"] == "ok", check["content"]
            outcome = "".join(printed).strip()
            left.append("" if outcome == "[] []" else f"{model}: {outcome}")
            if outcome != "[] []":  # clean up for the next trial
                client.execute_interactive(
                    "from nbio_helpers import stop_all; stop_all()", timeout=60
                )
        return left, lost
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        os.unlink(stacks)


def _reply_to(client, msg_id: str, seconds: float):
    """The shell reply to ``msg_id`` within ``seconds``, or None."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            reply = client.get_shell_msg(timeout=left)
        except queue.Empty:
            return None
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
    return None


def _wait_until_it_runs(client, msg_id: str) -> None:
    """Wait for the kernel to begin the cell (its ``execute_input``). An idle ipykernel
    ignores SIGINT (``SIG_IGN`` between requests; ``default_int_handler`` only while it
    handles one), so an interrupt sent before the cell begins is lost, and the loop never
    ends: that is what failed this test, 1 run in 3, before it waited."""
    while True:
        msg = client.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
            return


def _stacks_of(manager, stacks: str) -> str:
    """Every thread's stack in the kernel, dumped by faulthandler (SETUP) on SIGUSR1."""
    os.kill(manager.provisioner.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline and "Current thread" not in text:
        time.sleep(0.1)  # faulthandler writes from its signal handler: nothing to wait on
        with open(stacks, encoding="utf-8", errors="replace") as dump:
            text = dump.read()
    return text or "(no dump)"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="interrupts by signal (POSIX kernels)")
def test_interrupting_a_tight_with_loop_leaves_nothing_running():
    left, lost = interrupt_trials(30)
    assert len(lost) <= MAX_LOST, f"the first interrupt was lost in {lost}"
    assert [outcome for outcome in left if outcome] == [], (
        f"{sum(map(bool, left))} of {len(left)} interrupts left something running"
    )
