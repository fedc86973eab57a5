"""Step 1 · callbacks: a reactor on top of ``selectors``.

Register a callback for a socket; each turn, ``select()`` sleeps until some sockets are ready
and the reactor calls back whoever waits on them. The callbacks live in ``key.data``.
"""

from __future__ import annotations

import collections
import selectors

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Reactor:
    """Calls ``callback(*args)`` whenever a socket is ready, or soon.

    ``add_reader(sock, callback, *args)`` / ``add_writer(...)``: call it on every turn the
    socket is readable / writable, until ``remove_reader(sock)`` / ``remove_writer(sock)``.
    ``call_soon(callback, *args)``: call it on the next turn. ``run_forever()`` until ``stop()``.
    """

    def __init__(self, selector=None):
        self.selector = selector or selectors.DefaultSelector()
        self.ready: collections.deque = collections.deque()  # (callback, args), next turn
        self.running = False

    def call_soon(self, callback, *args):
        self.ready.append((callback, args))

    def add_reader(self, sock, callback, *args):
        self._watch(sock, READ, (callback, args))

    def add_writer(self, sock, callback, *args):
        self._watch(sock, WRITE, (callback, args))

    def remove_reader(self, sock):
        self._unwatch(sock, READ)

    def remove_writer(self, sock):
        self._unwatch(sock, WRITE)

    def _watch(self, sock, event, handler):
        key = self.selector.get_map().get(sock)
        if key is None:  # the first interest in this socket
            self.selector.register(sock, event, {event: handler})
        else:
            key.data[event] = handler
            self.selector.modify(sock, key.events | event, key.data)

    def _unwatch(self, sock, event):
        key = self.selector.get_map().get(sock)
        if key is None or event not in key.data:
            return
        del key.data[event]
        if key.data:
            self.selector.modify(sock, key.events & ~event, key.data)
        else:
            self.selector.unregister(sock)

    def timeout(self):
        """How long ``select()`` may sleep: not at all if callbacks wait, else until a socket
        is ready (None)."""
        return 0 if self.ready else None

    def run_once(self):
        """One turn: wait in ``select()``, call back the ready sockets, then the soon ones."""
        for key, events in self.selector.select(self.timeout()):
            for event in (READ, WRITE):
                # Looked up now, not before: an earlier callback may have removed this one.
                handler = key.data.get(event) if events & event else None
                if handler:
                    callback, args = handler
                    callback(*args)
        for _ in range(len(self.ready)):  # not those they add: they wait for next turn
            callback, args = self.ready.popleft()
            callback(*args)

    def run_forever(self):
        self.running = True
        while self.running:
            self.run_once()

    def stop(self):
        """Make ``run_forever()`` return after the current turn."""
        self.running = False

    def close(self):
        self.selector.close()


__all__ = ["Reactor"]
