"""A look inside asyncio's selector event loop, through documented doors where there are any.

Documented (the same on Python 3.10-3.13 and on every OS)::

    loop, selector = selector_loop()      # asyncio.SelectorEventLoop(selector): you hold it
    type(selector).__name__               # 'EpollSelector' on Linux, 'KqueueSelector' on macOS
    loop.add_reader(sock, callback)       # asyncio registers sock with *your* selector...
    selector.get_key(sock).events         # ...so the selectors API shows it: EVENT_READ

    loop, selector = selector_loop(WatchedSelector({sock.fileno(): "our socket"}))
    #   register(the loop's own waker, EVENT_READ)      <- printed as the loop registers it

Internal (what asyncio keeps in ``SelectorKey.data`` is not documented and may change in
any Python release; :func:`key_callbacks` checks the layout and says so when it differs)::

    key_callbacks(selector.get_key(sock))  # {'reader': 'callback', 'writer': None}

Reading ``loop._selector`` or ``Handle._callback`` directly works today but is private:
this module is the one place that leans on asyncio's internals, and only for looking.
"""

from __future__ import annotations

import asyncio
import selectors

INTERNAL_NOTE = (
    "internal view: asyncio's SelectorKey.data layout is not documented and "
    "may change in any Python release"
)


class InternalLayoutChanged(RuntimeError):
    """asyncio keeps something else in ``SelectorKey.data`` on this Python version."""


class WatchedSelector(selectors.DefaultSelector):
    """The OS's default selector, printing each change made to its interest list.

    Hand it to a loop (``selector_loop(WatchedSelector(...))``) to see what asyncio
    registers, modifies and unregisters, through the selector's documented methods only.
    Each call prints one line, in the thread that made it, such as
    ``  register(our socket, EVENT_READ)``.

    Parameters
    ----------
    names:
        ``{descriptor number: name}`` for the sockets you know (descriptor numbers are not
        printed: they differ from run to run).
    unnamed:
        The name printed for any other descriptor. A new ``SelectorEventLoop`` registers one
        socket of its own, the read end of its *self-pipe* (a socketpair that
        ``call_soon_threadsafe()`` writes to, to wake the loop): hence the default.
    print_to:
        The function that prints a line (default :func:`print`).
    """

    def __init__(
        self, names: dict | None = None, *, unnamed: str = "the loop's own waker", print_to=print
    ):
        super().__init__()
        self.names = dict(names or {})
        self.unnamed = unnamed
        self.print_to = print_to

    def _name(self, fileobj) -> str:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self.names.get(fd, self.unnamed)

    def register(self, fileobj, events, data=None):
        self.print_to(f"  register({self._name(fileobj)}, {events_text(events)})")
        return super().register(fileobj, events, data)

    def modify(self, fileobj, events, data=None):
        if events != self.get_key(fileobj).events:  # a change of data alone is not shown
            self.print_to(f"  modify({self._name(fileobj)}, {events_text(events)})")
        return super().modify(fileobj, events, data)

    def unregister(self, fileobj):
        self.print_to(f"  unregister({self._name(fileobj)})")
        return super().unregister(fileobj)


def events_text(events: int) -> str:
    """``"EVENT_READ"``, ``"EVENT_WRITE"``, ``"EVENT_READ | EVENT_WRITE"`` (or ``"0"``)."""
    names = [
        name
        for name, bit in (
            ("EVENT_READ", selectors.EVENT_READ),
            ("EVENT_WRITE", selectors.EVENT_WRITE),
        )
        if events & bit
    ]
    return " | ".join(names) or "0"


def selector_loop(selector: selectors.BaseSelector | None = None):
    """A new ``asyncio.SelectorEventLoop`` waiting on a selector you hold.

    Parameters
    ----------
    selector:
        The selector the loop should use (default: a new ``selectors.DefaultSelector()``,
        which is what the loop would create for itself).

    Returns
    -------
    ``(loop, selector)``. ``SelectorEventLoop(selector)`` is the documented constructor, so
    the selector's own API (``get_key``, ``get_map``) shows what the loop registered.
    Close the loop when done (``loop.close()`` also closes the selector).
    """
    if selector is None:
        selector = selectors.DefaultSelector()
    return asyncio.SelectorEventLoop(selector), selector


def key_callbacks(key: selectors.SelectorKey) -> dict[str, str | None]:
    """INTERNAL VIEW: the names of the callbacks asyncio registered for ``key``'s socket.

    asyncio's selector loop stores ``(reader_handle, writer_handle)`` in ``key.data``
    (CPython 3.10-3.13, ``selector_events.py``); each handle wraps the callback given to
    ``add_reader``/``add_writer``, or is None.

    Returns ``{"reader": name or None, "writer": name or None}``. Raises
    :class:`InternalLayoutChanged` if ``key.data`` is not laid out that way on this Python.
    """
    data = key.data
    if not (isinstance(data, tuple) and len(data) == 2):
        raise InternalLayoutChanged(
            f"{INTERNAL_NOTE}: key.data is {type(data).__name__}, not a (reader, writer) pair"
        )
    names: dict[str, str | None] = {}
    for role, handle in zip(("reader", "writer"), data):
        if handle is None:
            names[role] = None
            continue
        callback = getattr(handle, "_callback", None)
        if not isinstance(handle, asyncio.Handle) or callback is None:
            raise InternalLayoutChanged(
                f"{INTERNAL_NOTE}: the {role} is a "
                f"{type(handle).__name__}, not a Handle with a callback"
            )
        names[role] = getattr(callback, "__name__", repr(callback))
    return names


__all__ = [
    "INTERNAL_NOTE",
    "InternalLayoutChanged",
    "WatchedSelector",
    "events_text",
    "key_callbacks",
    "selector_loop",
]
