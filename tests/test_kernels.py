"""The kernels that tests start beside other tests take no TCP port for their channels
(tests/kernels.py)."""

from __future__ import annotations

import os
import stat

import pytest
from kernels import kernel_manager

pytest.importorskip("jupyter_client")

pytestmark = pytest.mark.timeout(120)

CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


@pytest.mark.skipif(os.name != "posix", reason="the ipc transport is POSIX only")
def test_a_test_kernels_channels_are_unix_sockets():
    manager = kernel_manager()
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive("6 * 7", timeout=30)
        assert reply["content"]["status"] == "ok"
        info = manager.get_connection_info()
        assert info["transport"] == "ipc"
        for channel in CHANNELS:  # each one a Unix socket: no TCP port was chosen for it
            assert stat.S_ISSOCK(os.stat(f"{info['ip']}-{info[channel]}").st_mode), channel
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert not os.path.exists(f"{info['ip']}-{info['shell_port']}")
