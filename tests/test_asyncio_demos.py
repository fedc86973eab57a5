"""nbio_helpers.lessons.nb05: drain() backpressure shown with public API, and one blocking
call in a handler freezing every client (asyncio.to_thread() does not)."""

import asyncio
import threading

import pytest

from nbio_helpers.events import PAUSE, RESUME
from nbio_helpers.lessons.backpressure import Flooder
from nbio_helpers.lessons.nb05 import SlowCallServer, WatchedAsyncioServer, freeze_probe, pinger

pytestmark = pytest.mark.timeout(60)

HIGH_WATER = 256 * 1024
FLOOD = 8 * 1024 * 1024
BLOCK = 0.2


def pool_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("asyncio_")]


def test_asyncio_drain_backpressure():
    with WatchedAsyncioServer(
        name="test-asyncio-bp", high_water=HIGH_WATER, sock_buffer_size=64 * 1024
    ) as server:
        with Flooder(server.address) as flooder:
            flooder.flood(total=FLOOD, seconds=3)
            assert flooder.stalled and flooder.sent < FLOOD  # held back
            pauses = [e for e in server.events.events() if e.kind == PAUSE]
            assert pauses  # drain() had to wait
            assert HIGH_WATER < server.peak_output <= HIGH_WATER + server.recv_size
            assert all(HIGH_WATER < e.nbytes <= HIGH_WATER + server.recv_size for e in pauses)
            flooder.drain(seconds=5)
            assert flooder.received == flooder.sent and flooder.echo_ok
        server.stop()
        marks = [e for e in server.events.events() if e.kind in (PAUSE, RESUME)]
    kinds = [e.kind for e in marks]
    assert kinds[:2] == [PAUSE, RESUME] and kinds == [PAUSE, RESUME] * (len(kinds) // 2), kinds
    assert all(e.nbytes <= HIGH_WATER // 4 for e in marks if e.kind == RESUME)  # low-water


def test_without_a_flood_drain_never_waits():
    with WatchedAsyncioServer(name="test-asyncio-calm", high_water=HIGH_WATER) as server:
        slowest = asyncio.run(pinger(server.address, seconds=0.05))
        server.stop()
        assert slowest < 5
        assert server.events.count(PAUSE) == 0 and server.peak_output <= len(b"ping")


@pytest.mark.slow
def test_blocking_call_freezes_every_client_to_thread_does_not():
    with SlowCallServer(block=BLOCK, name="test-slow-call") as server:
        slow, frozen = asyncio.run(freeze_probe(server.address, clients=5, seconds=0.4))
    with SlowCallServer(block=BLOCK, in_thread=True, name="test-slow-thread") as server:
        slow_t, free = asyncio.run(freeze_probe(server.address, clients=5, seconds=0.4))
    assert slow >= BLOCK and slow_t >= BLOCK  # the slow request waited anyway
    assert len(frozen) == len(free) == 5
    assert min(frozen) > BLOCK / 2, frozen  # every pinger waited it out
    assert max(free) < BLOCK / 2, free  # nobody else waited
    assert not pool_threads()  # the pool's threads joined


def test_freeze_probe_leaves_no_task_behind_on_an_error():
    async def probe_a_closed_port():
        left = set(asyncio.all_tasks()) - {asyncio.current_task()}
        with SlowCallServer(name="test-slow-gone") as server:
            address = server.address
        with pytest.raises(OSError):
            await freeze_probe(address, clients=3, seconds=0.2, timeout=5)
        return set(asyncio.all_tasks()) - {asyncio.current_task()} - left

    assert asyncio.run(probe_a_closed_port()) == set()


@pytest.mark.slow
def test_freeze_probe_is_bounded():
    async def probe():
        with SlowCallServer(block=1.0, name="test-slow-bounded") as server:
            with pytest.raises(asyncio.TimeoutError):
                await freeze_probe(server.address, clients=2, seconds=2.0, timeout=0.5)
            return set(asyncio.all_tasks()) - {asyncio.current_task()}

    assert asyncio.run(probe()) == set()
