"""Interrupting a real Jupyter kernel in a tight start/stop loop leaves no server behind.

What a learner does: a cell starts and stops servers in a loop (``with PollingServer(...)``),
it runs too long, they press "interrupt". The kernel gets SIGINT at a random moment: inside
``start()``, inside ``stop()``, or between. Afterwards no nbio server may be registered and
no ``nbio-`` thread alive. Every model takes its turn; many trials, random moments.
"""

from __future__ import annotations

import os
import random
import sys
import time

import pytest

jupyter_client = pytest.importorskip("jupyter_client")

pytestmark = pytest.mark.timeout(300)

SETUP = """\
import threading
from nbio_helpers import MODELS, running_servers
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


def interrupt_trials(trials: int, seed: int = 5, env: dict | None = None) -> list[str]:
    """Run the tight loop ``trials`` times in one kernel, interrupt it after a random delay,
    and return what each trial left behind (an empty string when nothing)."""
    from jupyter_client.manager import KernelManager

    rng = random.Random(seed)
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env={**os.environ, **(env or {})})
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive(SETUP, timeout=60)
        left = []
        for trial in range(trials):
            model = MODELS[trial % len(MODELS)]
            msg_id = client.execute(TIGHT_LOOP.format(model=model), stop_on_error=False)
            time.sleep(rng.uniform(0.05, 0.4))
            manager.interrupt_kernel()
            while True:  # the interrupted cell's reply
                reply = client.get_shell_msg(timeout=60)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
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
        return left
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="interrupts by signal (POSIX kernels)")
def test_interrupting_a_tight_with_loop_leaves_nothing_running():
    left = interrupt_trials(30)
    assert [outcome for outcome in left if outcome] == [], (
        f"{sum(map(bool, left))} of {len(left)} interrupts left something running"
    )
