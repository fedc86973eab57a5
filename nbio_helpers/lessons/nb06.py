"""Notebook 06's code, in one place: everything the notebook uses beyond the
public API of :mod:`nbio_helpers`, re-exported from where it lives."""

# ---- what notebook 06 also uses, from where it lives (so the notebook imports from here)
from nbio_helpers.framing import LineFramer, LineTooLong
from nbio_helpers.loop import (
    Future,
    GeneratorLoop,
    Loop,
    Reactor,
    Task,
    Timer,
    TimerLoop,
    chat_asyncio,
    chat_coroutines,
    chat_generators,
    measure,
    start_chat,
)
from nbio_helpers.loop.chat_callbacks import CallbackConnection
from nbio_helpers.loop.names import NAMES, names_table
from nbio_helpers.loop.record import LoopLog, recording
from nbio_helpers.loop.servers import LoopServer
from nbio_helpers.loop.talk import ChatClient
from nbio_helpers.loop.timeline import plot_loop_timeline, select_rows
from nbio_helpers.models.tasks_model import TasksServer

__all__: list[str] = [
    "NAMES",
    "CallbackConnection",
    "ChatClient",
    "Future",
    "GeneratorLoop",
    "LineFramer",
    "LineTooLong",
    "Loop",
    "LoopLog",
    "LoopServer",
    "Reactor",
    "Task",
    "TasksServer",
    "Timer",
    "TimerLoop",
    "chat_asyncio",
    "chat_coroutines",
    "chat_generators",
    "measure",
    "names_table",
    "plot_loop_timeline",
    "recording",
    "select_rows",
    "start_chat",
]
