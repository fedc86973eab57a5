"""nbio_helpers.lessons.loop_view: asyncio's selector loop seen through a selector we hold."""

import selectors
import socket
import threading

import pytest

from nbio_helpers.lessons.loop_view import (
    InternalLayoutChanged,
    WatchedSelector,
    key_callbacks,
    selector_loop,
)

pytestmark = pytest.mark.timeout(30)


def test_the_loop_registers_with_the_selector_we_hold():
    loop, selector = selector_loop()
    ours, peer = socket.socketpair()
    got = []

    def on_readable():
        got.append(ours.recv(1024))
        loop.stop()

    try:
        assert type(selector) is selectors.DefaultSelector
        ours.setblocking(False)
        loop.add_reader(ours, on_readable)
        key = selector.get_key(ours)
        assert key.events == selectors.EVENT_READ
        assert key_callbacks(key) == {"reader": "on_readable", "writer": None}
        loop.add_writer(ours, loop.stop)
        assert key_callbacks(selector.get_key(ours)) == {"reader": "on_readable", "writer": "stop"}
        loop.remove_writer(ours)
        peer.send(b"wake up")
        runner = threading.Thread(target=loop.run_forever, daemon=True)
        runner.start()
        runner.join(5)
        assert got == [b"wake up"]
        loop.remove_reader(ours)
        with pytest.raises(KeyError):
            selector.get_key(ours)
    finally:
        loop.close()
        ours.close()
        peer.close()
    assert selector.get_map() is None  # loop.close() closed our selector too


def test_a_chosen_selector_class_is_used():
    loop, selector = selector_loop(selectors.SelectSelector())
    try:
        assert type(selector) is selectors.SelectSelector
    finally:
        loop.close()


@pytest.mark.parametrize("data", ["listener", (object(), None), (1, 2, 3)])
def test_an_unknown_layout_is_said_plainly(data):
    key = selectors.SelectorKey(fileobj=0, fd=0, events=selectors.EVENT_READ, data=data)
    with pytest.raises(InternalLayoutChanged, match="internal view"):
        key_callbacks(key)


def test_a_watched_selector_prints_each_change_the_loop_makes():
    lines = []
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    loop, _selector = selector_loop(
        WatchedSelector({ours.fileno(): "our socket"}, print_to=lines.append)
    )
    try:
        assert lines == ["  register(the loop's own waker, EVENT_READ)"]
        loop.add_reader(ours, loop.stop)
        loop.add_writer(ours, loop.stop)
        loop.remove_writer(ours)
        loop.remove_reader(ours)
    finally:
        loop.close()
        ours.close()
        peer.close()
    assert lines == [
        "  register(the loop's own waker, EVENT_READ)",
        "  register(our socket, EVENT_READ)",
        "  modify(our socket, EVENT_READ | EVENT_WRITE)",
        "  modify(our socket, EVENT_READ)",
        "  unregister(our socket)",
        "  unregister(the loop's own waker)",
    ]


def test_a_watched_selector_prints_to_stdout_by_default(capsys):
    with WatchedSelector(unnamed="a socket") as selector:
        a, b = socket.socketpair()
        selector.register(a, selectors.EVENT_WRITE)
        selector.modify(a, selectors.EVENT_WRITE, data="only data")  # no change: not shown
        selector.unregister(a)
        a.close()
        b.close()
    assert capsys.readouterr().out == (
        "  register(a socket, EVENT_WRITE)\n  unregister(a socket)\n"
    )
