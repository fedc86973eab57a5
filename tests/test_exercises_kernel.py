"""Hostile learner code in a real Jupyter kernel: the checker cell ends with a verdict, no
learner code keeps running (the kernel's CPU is about 0 a second later), nothing is printed
into later cells, and the Stop button during a check stops the learner's code too.

Driven with jupyter_client's KernelManager: execute a cell, read its outputs, interrupt the
kernel (the Stop button), and measure the kernel process's CPU with psutil.

``python tests/test_exercises_kernel.py`` prints the table of every case (time to verdict,
the kernel's CPU in the second after it) without asserting anything.
"""

from __future__ import annotations

import queue
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kernels import kernel_manager

psutil = pytest.importorskip("psutil")
jupyter_client = pytest.importorskip("jupyter_client")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parent.parent

IDLE_CPU = 0.15
"""Most of a core the kernel may use, in the second after a verdict, with nothing running
(a thread still spinning would show as about 1.0)."""

# Learner code for each case: (the learner's cell, the checker cell).
RECV_CHECK = (
    "from nbio_helpers.exercises.nb01 import check_recv_exactly_timeout\n"
    "check_recv_exactly_timeout(recv_exactly_timeout)"
)
SEND_CHECK = (
    "from nbio_helpers.exercises.nb03 import check_send_pending\ncheck_send_pending(send_pending)"
)
SELECT_CHECK = (
    "from nbio_helpers.exercises.nb04 import check_select_round\ncheck_select_round(select_round)"
)
IDLE_CHECK = (
    "from nbio_helpers.exercises.nb05 import check_idle_timeout\n"
    "check_idle_timeout(IdleTimeoutServer)"
)

CASES = {
    "infinite loop (01)": (
        """
        def recv_exactly_timeout(sock, n, timeout):
            while True:
                pass
        """,
        RECV_CHECK,
        "did not return within",
    ),
    "blocking recv() without timeout (01)": (
        """
        def recv_exactly_timeout(sock, n, timeout):
            old = sock.gettimeout()
            sock.settimeout(None)               # blocks forever on the peer that stalls
            try:
                data = b''
                while len(data) < n:
                    chunk = sock.recv(n - len(data))
                    if not chunk:
                        raise ConnectionError('closed')
                    data += chunk
                return data
            finally:
                sock.settimeout(old)
        """,
        RECV_CHECK,
        "did not return within",
    ),
    "select() without timeout (04)": (
        """
        import select
        def select_round(listener, outbufs, finished, timeout):
            select.select([listener], [], [])
            while True:
                select.select([listener], [], [])
        """,
        SELECT_CHECK,
        "did not return within",
    ),
    "print flood (04)": (
        """
        def select_round(listener, outbufs, finished, timeout):
            while True:
                print("tick")
        """,
        SELECT_CHECK,
        "printed",
    ),
    "KeyboardInterrupt in send_pending (03)": (
        """
        def send_pending(wlist):
            if wlist:
                raise KeyboardInterrupt
        """,
        SEND_CHECK,
        "raised KeyboardInterrupt",
    ),
    "sys.exit() in send_pending (03)": (
        """
        import sys
        def send_pending(wlist):
            if wlist:
                sys.exit()
        """,
        SEND_CHECK,
        "raised SystemExit",
    ),
    "__init__ that loops forever (05)": (
        """
        from nbio_helpers import SelectorsServer
        class IdleTimeoutServer(SelectorsServer):
            def __init__(self, *args, idle_timeout=1.0, **kwargs):
                while True:
                    pass
        """,
        IDLE_CHECK,
        "did not return within",
    ),
}

UNSTOPPABLE = {
    "time.sleep(1e6) (01)": (
        """
        import time
        def recv_exactly_timeout(sock, n, timeout):
            time.sleep(1e6)
        """,
        RECV_CHECK,
    ),
    "a loop that catches BaseException (01)": (
        """
        import time
        def recv_exactly_timeout(sock, n, timeout):
            while True:
                try:
                    time.sleep(0.001)
                except BaseException:
                    pass
        """,
        RECV_CHECK,
    ),
}


class Kernel:
    """A kernel started with jupyter_client, in the repository's folder."""

    def __init__(self):
        self.km = kernel_manager()
        self.km.start_kernel(cwd=str(ROOT))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.process = psutil.Process(self.km.provisioner.process.pid)

    def execute(self, code: str, timeout: float = 90.0, interrupt_after: float | None = None):
        """Run ``code``; return (outputs, seconds until the reply). Outputs: a list of
        (kind, text) with kind "stdout", "stderr", "error" or "result"."""
        msg_id = self.kc.execute(textwrap.dedent(code))
        started = time.monotonic()
        outputs, interrupted = [], False
        while True:
            if (
                interrupt_after is not None
                and not interrupted
                and time.monotonic() - started > interrupt_after
            ):
                self.km.interrupt_kernel()  # the Stop button
                interrupted = True
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"no reply within {timeout} s") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                outputs.append((content["name"], content["text"]))
            elif kind == "error":
                outputs.append(("error", "\n".join(content["traceback"])))
                outputs.append(("ename", content["ename"]))
            elif kind == "execute_result":
                outputs.append(("result", content["data"].get("text/plain", "")))
            elif kind == "status" and content["execution_state"] == "idle":
                return outputs, time.monotonic() - started

    def cpu_over(self, seconds: float = 1.0) -> float:
        """Cores the kernel process used in the next ``seconds``."""
        before = sum(self.process.cpu_times()[:2])
        time.sleep(seconds)
        return (sum(self.process.cpu_times()[:2]) - before) / seconds

    def sum_speed(self) -> float:
        """Seconds a 3-million-iteration sum takes in the kernel (measured inside it)."""
        outputs, _ = self.execute(
            "import time as _t; _s = _t.perf_counter(); "
            "_x = sum(range(3_000_000)); print(_t.perf_counter() - _s)"
        )
        return float("".join(text for kind, text in outputs if kind == "stdout"))

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel():
    k = Kernel()
    k.execute(
        "import nbio_helpers.exercises.nb01, nbio_helpers.exercises.nb03, "
        "nbio_helpers.exercises.nb04, nbio_helpers.exercises.nb05"
    )
    yield k
    k.close()


def text_of(outputs, *kinds) -> str:
    return "".join(text for kind, text in outputs if kind in kinds)


def run_case(kernel: Kernel, learner: str, check: str, interrupt_after=None):
    kernel.execute(learner)
    outputs, elapsed = kernel.execute(check, interrupt_after=interrupt_after)
    cpu = kernel.cpu_over(1.0)
    return outputs, elapsed, cpu


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_code_in_a_kernel(kernel, case):
    learner, check, expected = CASES[case]
    outputs, _elapsed, cpu = run_case(kernel, learner, check)
    error = text_of(outputs, "error")
    assert text_of(outputs, "ename") == "NotYetError", outputs
    assert "❌ Not yet" in error and expected in error, error
    assert "Traceback" not in error and len(error.splitlines()) <= 8, error  # the verdict only
    assert text_of(outputs, "result") == ""  # no True/False
    assert cpu < IDLE_CPU, f"the kernel used {cpu:.2f} of a core after the verdict"
    later, _ = kernel.execute("print('later cell')")
    assert text_of(later, "stdout", "stderr") == "later cell\n"  # nothing leaks
    assert "learner-" not in text_of(
        kernel.execute("import threading; print([t.name for t in threading.enumerate()])")[0],
        "stdout",
    )


def test_stop_button_during_a_check_stops_the_learner_code(kernel):
    learner = """
        from nbio_helpers import SelectorsServer
        class IdleTimeoutServer(SelectorsServer):
            def __init__(self, *args, idle_timeout=1.0, **kwargs):
                super().__init__(*args, **kwargs)
                self.idle_timeout = idle_timeout
            def serve(self):
                while True:
                    pass
        """
    outputs, elapsed, cpu = run_case(kernel, learner, IDLE_CHECK, interrupt_after=1.0)
    assert text_of(outputs, "ename") == "CheckInterrupted", outputs
    assert "your code was stopped too" in text_of(outputs, "error")
    assert elapsed < 5.0
    assert cpu < IDLE_CPU, f"the kernel used {cpu:.2f} of a core after the Stop button"
    later, _ = kernel.execute("print('later cell')")
    assert text_of(later, "stdout") == "later cell\n"


@pytest.mark.parametrize("case", list(UNSTOPPABLE))
def test_unstoppable_code_says_restart(case):
    kernel = Kernel()  # its own kernel: the learner's code stays behind in it
    try:
        learner, check = UNSTOPPABLE[case]
        # Neither ends however long it is tried (a LearnerStopped never lands in time.sleep(),
        # and the loop catches every one): trying for 0.3 s instead of STOP_TIMEOUT's 1.5 s
        # gives the same verdict sooner.
        kernel.execute("import nbio_helpers.exercises.harness as h; h.STOP_TIMEOUT = 0.3")
        outputs, _elapsed, _ = run_case(kernel, learner, check)
        error = text_of(outputs, "error")
        assert "restart the kernel (Kernel → Restart)" in error, error
        later, _ = kernel.execute(  # every later check repeats the advice
            "from nbio_helpers.exercises.nb01 import check_recv_exactly_timeout\n"
            "check_recv_exactly_timeout(lambda sock, n, timeout: b'')"
        )
        assert "earlier check is still running" in text_of(later, "error")
    finally:
        kernel.close()


def table() -> None:  # pragma: no cover - run by hand for the report
    kernel = Kernel()
    kernel.execute("import nbio_helpers.exercises.nb01")
    base = sorted(kernel.sum_speed() for _ in range(3))[1]
    print(f"3M-iteration sum before any check: {base:.3f} s")
    print(
        "| case | verdict | time to verdict (s) | kernel CPU in the next 1 s (cores) | "
        "3M sum after (s) |"
    )
    print("| --- | --- | --- | --- | --- |")
    rows = [(name, learner, check, None) for name, (learner, check, _) in CASES.items()]
    rows.append(
        (
            "Stop button during a check (05 serve() spins)",
            CASES
            and """
        from nbio_helpers import SelectorsServer
        class IdleTimeoutServer(SelectorsServer):
            def __init__(self, *args, idle_timeout=1.0, **kwargs):
                super().__init__(*args, **kwargs)
                self.idle_timeout = idle_timeout
            def serve(self):
                while True:
                    pass
        """,
            IDLE_CHECK,
            1.0,
        )
    )
    for name, learner, check, interrupt in rows:
        outputs, elapsed, cpu = run_case(kernel, learner, check, interrupt)
        first = (text_of(outputs, "error") or text_of(outputs, "stdout")).splitlines()[0]
        first = first.replace("\x1b[0;31m", "").replace("\x1b[0m", "")[:90]
        print(f"| {name} | {first} | {elapsed:.2f} | {cpu:.3f} | {kernel.sum_speed():.3f} |")
    kernel.close()
    for name, (learner, check) in UNSTOPPABLE.items():
        kernel = Kernel()
        kernel.execute("import nbio_helpers.exercises.nb01")
        outputs, elapsed, cpu = run_case(kernel, learner, check)
        first = text_of(outputs, "error").splitlines()[0][:90]
        print(
            f"| {name} | {first} (+ restart advice) | {elapsed:.2f} | {cpu:.3f} | "
            f"{kernel.sum_speed():.3f} |"
        )
        kernel.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(table())
