"""Step 3 · the same generator chat on the :class:`~.timers.TimerLoop`, with an idle timeout.

Nothing in ``chat()`` changes: its reads now ``yield ("read", sock, idle_timeout)``, and the
loop raises ``TimeoutError`` in the task when no data came in time (the server then says
``! nothing from you for N s: bye`` and closes). While every client is quiet, the loop sleeps
in ``select()`` until the earliest of their deadlines.
"""

from __future__ import annotations

from nbio_helpers.loop.chat_generators import GeneratorChatServer
from nbio_helpers.loop.timers import TimerLoop

DEFAULT_IDLE_TIMEOUT = 300.0
"""Seconds a client may stay silent on this step's server (5 minutes) unless told otherwise."""


class TimerChatServer(GeneratorChatServer):
    """:class:`~.chat_generators.GeneratorChatServer` on a TimerLoop: ``idle_timeout`` works."""

    model = "chat-timers"
    loop_class = TimerLoop

    def __init__(self, *args, idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT, **kwargs):
        super().__init__(*args, idle_timeout=idle_timeout, **kwargs)


__all__ = ["DEFAULT_IDLE_TIMEOUT", "TimerChatServer"]
