"""copy_time times phase 2 of recv() alone: it returns a sane CopyTiming, refuses sizes it
cannot measure, and leaves nothing open. No timing assertions (machines are noisy): the
notebook asserts the one physical ordering it relies on."""

from __future__ import annotations

import gc
import socket
import threading
import warnings

import pytest

from nbio_helpers.lessons import nb01 as copying
from nbio_helpers.lessons.nb01 import MAX_SIZE, CopyTiming, copy_time, fits

pytestmark = pytest.mark.alone  # measures: runs alone under pytest -n


@pytest.mark.parametrize("size", [1, 14, 64 * 1024, MAX_SIZE])
def test_copy_time_measures_the_given_size(size):
    timing = copy_time(size, repeats=5)
    assert isinstance(timing, CopyTiming)
    assert timing.size == size and timing.repeats == 5
    assert 0 <= timing.low <= timing.median <= timing.high
    assert timing.high < 5.0
    assert timing.bytes_per_second > 0


@pytest.mark.parametrize("size", [0, -1, MAX_SIZE + 1, 2 * 1024 * 1024, 1.5, "14", True, None])
def test_bad_sizes_are_refused_with_a_clear_error(size):
    with pytest.raises(ValueError, match="size must be an int from 1 to"):
        copy_time(size)


@pytest.mark.parametrize("repeats", [0, -3, 2.0, False])
def test_bad_repeats_are_refused(repeats):
    with pytest.raises(ValueError, match="repeats must be an int"):
        copy_time(14, repeats=repeats)


def test_nothing_is_left_open():
    before = threading.active_count()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)  # an unclosed socket would warn
        copy_time(1024, repeats=3)
        gc.collect()
    assert threading.active_count() == before


def test_fits_keeps_half_the_buffer_for_tcp():
    assert fits(128 * 1024, 425_984)  # Linux's usual cap, doubled by the kernel
    assert not fits(256 * 1024, 425_984)
    assert fits(1, 2)


def test_a_receive_buffer_too_small_is_a_value_error(monkeypatch):
    monkeypatch.setattr(copying, "fits", lambda size, rcvbuf: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with pytest.raises(ValueError, match="do not fit, unread"):
            copy_time(14)
        gc.collect()


def test_a_short_recv_is_not_counted_and_a_persistent_one_is_an_error(monkeypatch):
    """A recv() returning fewer bytes than were waiting gives no copy figure: that run is
    dropped (and its bytes drained); if it keeps happening, RuntimeError."""
    real = socket.socket.recv
    calls = {"timed": 0}

    class Shorting(socket.socket):
        def recv(self, n, flags=0):
            if flags or n != 1000:  # the timed call only
                return real(self, n, flags)
            calls["timed"] += 1
            return real(self, n // 2)  # half of what is waiting

    def pair(size, timeout):
        sender, receiver = real_pair(size, timeout)
        shorting = Shorting(fileno=receiver.detach())
        shorting.setblocking(False)
        return sender, shorting

    real_pair = copying.buffered_pair
    monkeypatch.setattr(copying, "buffered_pair", pair)
    with pytest.raises(RuntimeError, match="kept returning fewer bytes"):
        copy_time(1000, repeats=3)
    assert calls["timed"] == 4  # 3 repeats tolerated, the 4th short one fails
