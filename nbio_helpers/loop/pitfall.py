"""The classic asyncio pitfall, on our loop: one blocking call stops every task.

:class:`PausingEchoServer` is the ``tasks`` echo server with one twist: a message starting
with ``!pause`` makes its task pause for ``pause`` seconds before echoing. With
``blocking=True`` it pauses with ``time.sleep()``, which blocks the loop's only thread: every
other client waits too. With ``blocking=False`` it awaits ``loop.sleep()``: only that task
waits, the loop serves the others meanwhile. :func:`~.measure.blocking_call_latency`
measures what the other clients see.
"""

from __future__ import annotations

import time

from nbio_helpers.connection import echo_upper
from nbio_helpers.models.tasks_model import TasksServer

PAUSE_COMMAND = b"!pause"


class PausingEchoServer(TasksServer):
    """The ``tasks`` echo server; ``!pause`` pauses the task that reads it.

    Parameters
    ----------
    pause:
        Seconds to pause.
    blocking:
        True: ``time.sleep(pause)`` (the mistake). False: ``await loop.sleep(pause)``.
    """

    model = "tasks-pausing"

    def __init__(self, *args, pause: float = 0.2, blocking: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.pause, self.blocking = pause, blocking

    async def echo(self, stream):
        try:
            while data := await stream.read(self.recv_size):
                if data.startswith(PAUSE_COMMAND):
                    if self.blocking:
                        time.sleep(self.pause)  # blocks the loop: every task waits
                    else:
                        await stream.loop.sleep(self.pause)  # only this task waits
                stream.write(echo_upper(data))
                await stream.drain()
        finally:
            stream.close()


__all__ = ["PAUSE_COMMAND", "PausingEchoServer"]
