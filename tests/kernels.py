"""Kernels for tests that run beside others: their channels on Unix sockets, not TCP ports.

jupyter_client picks a kernel's five TCP ports by binding port 0 and closing the socket; the
kernel binds them a second or more later, once Python and IPython are imported (longer on a
loaded machine). In that window a test server in another worker, bound to 127.0.0.1:0, can
get one of them. Seen in CI: nbgrader's kernel client sent its first message to a test's
echo server, which upper-cased it ("Invalid Signature: b'2B54F2...'", an HMAC in capitals),
and a test server counted a 501st connection from 500 clients. The ``ipc`` transport (Unix
sockets, POSIX only) takes no port: each kernel's sockets are files in a folder of its own.
On Windows, which has no ipc transport, the kernels keep TCP.
"""

from __future__ import annotations

import os
import tempfile
import weakref

__all__ = ["ipc_folder", "ipc_settings", "kernel_manager"]

SHORT_TMP = "/tmp" if os.path.isdir("/tmp") else None


def ipc_folder() -> tempfile.TemporaryDirectory:
    """A fresh folder for kernels' Unix sockets, in /tmp where there is one: a Unix socket's
    path is limited to about 104 bytes, and macOS's default temporary folder is long."""
    return tempfile.TemporaryDirectory(prefix="nbio-kernel-", dir=SHORT_TMP)


def ipc_settings(folder: str) -> dict[str, str]:
    """``{"transport": "ipc", "ip": PREFIX}`` for kernels whose sockets go in ``folder``
    (jupyter_client names them PREFIX-1, PREFIX-2, … and skips those that exist), or ``{}``
    on Windows."""
    if os.name != "posix":
        return {}
    return {"transport": "ipc", "ip": os.path.join(folder, "kernel")}


def kernel_manager(**kwargs):
    """A ``jupyter_client.KernelManager`` for the ``python3`` kernel, its sockets in a folder
    of its own (removed with the manager)."""
    from jupyter_client.manager import KernelManager

    folder = ipc_folder()
    manager = KernelManager(kernel_name="python3", **ipc_settings(folder.name), **kwargs)
    weakref.finalize(manager, folder.cleanup)
    return manager
