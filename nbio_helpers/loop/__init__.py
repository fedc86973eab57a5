"""Build the event loop asyncio is, in steps (notebook 06): one small module per idea.

The loop, step by step (each class adds one idea to the one before):

* :mod:`.reactor` — step 1, callbacks: :class:`Reactor` (``add_reader``, ``add_writer``,
  ``call_soon``, ``run_forever``) on top of ``selectors``, callbacks in ``key.data``;
* :mod:`.generators` — step 2, generator tasks: :class:`GeneratorLoop` (``spawn``; a task
  ``yield``\\ s ``("read", sock)`` / ``("write", sock)``);
* :mod:`.timers` — step 3, time: :class:`TimerLoop` (``call_later`` on a heap, ``select()``'s
  timeout from the earliest deadline, ``yield "sleep", s``, reads with a timeout);
* :mod:`.coroutines` — step 4, ``async``/``await``: :class:`Future`, :class:`Task`,
  :class:`Loop` (``create_task``, ``sleep``, ``wait_for``, ``sock_recv``, ``sock_sendall``);
* :mod:`.names` — step 5: our names and asyncio's, one to one.

The chat server each step runs (:mod:`.chat` is its protocol and room, no socket):
:mod:`.chat_callbacks`, :mod:`.chat_generators`, :mod:`.chat_timers`,
:mod:`.chat_coroutines`, :mod:`.chat_asyncio`; :func:`start_chat` starts one in the
background. Around them: :mod:`.transport` (output that never blocks), :mod:`.servers` (the
server lifecycle), :mod:`.record` (the loop's event log, recorded around the loop),
:mod:`.timeline` (its picture), :mod:`.measure` (our loop against asyncio and threads),
:mod:`.command` (``python -m nbio_helpers chat``).

Usage::

    from nbio_helpers.loop import start_chat
    server = start_chat("coroutines", name="chat")   # 127.0.0.1:<free port>
    # connect clients (nc, sockets) to server.address ...
    server.stop()
"""

from nbio_helpers.loop.chat_asyncio import AsyncioChatServer
from nbio_helpers.loop.chat_callbacks import CallbackChatServer
from nbio_helpers.loop.chat_coroutines import CoroutineChatServer
from nbio_helpers.loop.chat_generators import GeneratorChatServer
from nbio_helpers.loop.chat_timers import TimerChatServer
from nbio_helpers.loop.coroutines import CancelledError, Future, Loop, Task
from nbio_helpers.loop.generators import GeneratorLoop
from nbio_helpers.loop.reactor import Reactor
from nbio_helpers.loop.record import LoopLog, SelectCall, TaskRun
from nbio_helpers.loop.timers import Timer, TimerLoop

CHAT_SERVERS = {
    "callbacks": CallbackChatServer,
    "generators": GeneratorChatServer,
    "timers": TimerChatServer,
    "coroutines": CoroutineChatServer,
    "asyncio": AsyncioChatServer,
}
"""Step name -> the chat server of that step, in the order notebook 06 builds them."""


def start_chat(step: str = "coroutines", **options):
    """Start the chat server of ``step`` (a key of :data:`CHAT_SERVERS`) in the background.

    ``options`` go to the server class (``host``, ``port``, ``name``, ``idle_timeout``,
    ``max_line``, ``high_water``...). A running server with the same ``name`` is stopped first.
    """
    try:
        cls = CHAT_SERVERS[step]
    except KeyError:
        raise ValueError(
            f"unknown step {step!r}; choose one of: {', '.join(CHAT_SERVERS)}"
        ) from None
    return cls(**options).start()


__all__ = [
    "CHAT_SERVERS",
    "AsyncioChatServer",
    "CallbackChatServer",
    "CancelledError",
    "CoroutineChatServer",
    "Future",
    "GeneratorChatServer",
    "GeneratorLoop",
    "Loop",
    "LoopLog",
    "Reactor",
    "SelectCall",
    "Task",
    "TaskRun",
    "Timer",
    "TimerChatServer",
    "TimerLoop",
    "start_chat",
]
