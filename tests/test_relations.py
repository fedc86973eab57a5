"""What must hold on any machine, measured with the clients in a separate process.

These are the facts notebooks 03-05 teach, as relations between measurements (never a
figure of this machine): a busy machine changes every number, but not which is larger. CPU
lower bounds on a busy loop are retried (a loaded machine gives it less than a core), and
skipped, with the reason, where no core is free; upper bounds need no retry (a sleeping
loop's CPU cannot grow because other programs run).

Slow (about 20 s): ``pytest -m slow tests/test_relations.py``.
"""

import os
import sys

import pytest

from nbio_helpers.measure import (
    ComparisonRow,
    compare,
    comparison_relations,
    idle_cost,
    neighbour_slowdown,
    poll_interval_sweep,
    spare_cores,
)
from nbio_helpers.measure.scaling import available_selectors, measure_scaling
from nbio_helpers.models import PollingServer

pytestmark = [pytest.mark.alone, pytest.mark.slow, pytest.mark.timeout(120)]

INTERVALS = [0, 0.0001, 0.001, 0.01, 0.05]
SHORTEST = 0.05 if sys.platform == "win32" else 0.001  # Windows: the timer tick
WAITING = ("select", "selectors", "asyncio")


@pytest.fixture(scope="module")
def sweep():
    return {
        r["interval"]: r for r in poll_interval_sweep(INTERVALS, seconds=0.3, latency_budget=0.6)
    }


MODELS = [
    ("busy", "polling", {"interval": 0}),
    ("sleeping", "polling", {"interval": 0.01}),
    *[(name, name, {}) for name in WAITING],
]


@pytest.fixture(scope="module")
def rows():
    before = spare_cores(0.3)
    rows = compare(MODELS, parts=("idle", "latency", "load"), idle_seconds=0.2)
    after = spare_cores(0.3)
    spare = None if before is None or after is None else min(before, after)
    return {row.label: row for row in rows}, spare


def sentences_for(models) -> list[str]:
    """The relations comparison_relations() checks for these models (they depend only on
    which models and parts were measured, not on the figures)."""
    shaped = [
        ComparisonRow(
            label,
            model,
            options,
            idle_cpu=0.0,
            idle_wakeups=0.0,
            median_latency=1.0,
            throughput=1.0,
        )
        for label, model, options in models
    ]
    return [sentence for sentence, _ in comparison_relations(shaped)]


# ------------------------------------------------------------- the polling trade-off
def test_busy_polling_answers_first_at_every_sleep_of_1_ms_and_more(sweep):
    busy = sweep[0]["median"]
    for interval, r in sweep.items():
        if interval >= 0.001:
            assert busy <= r["median"], (interval, busy, r["median"])


def test_a_sleeping_poller_answers_in_about_half_its_sleep(sweep):
    for interval, r in sweep.items():
        if interval >= SHORTEST:
            assert r["theory"] / 2 <= r["median"] <= 2 * r["theory"], r


def test_the_longer_the_sleep_the_less_cpu(sweep):
    assert sweep[0]["cpu"] > sweep[0.001]["cpu"] > sweep[0.05]["cpu"]


def test_a_sleeping_poller_goes_round_no_faster_than_it_sleeps(sweep):
    for interval, r in sweep.items():
        if interval > 0:
            assert r["period"] >= interval, r
            assert r["cpu_per_round"] > 0


# ------------------------------------------ the relations notebooks 04 and 05 assert
@pytest.mark.parametrize("sentence", sentences_for(MODELS))
def test_the_comparison_relations_hold(rows, sentence):
    by_label, spare = rows
    relations = {r.sentence: r for r in comparison_relations(by_label.values(), spare_cores=spare)}
    assert relations[sentence].holds, relations[sentence].figures


def needs_a_free_core():
    """Skip, saying why, unless a core is free for the busy loop (measured now)."""
    spare = spare_cores(0.5)
    if spare is None:
        pytest.skip("cannot measure how busy the cores are here")
    if spare < 1.2:
        pytest.skip(f"no free core for the busy loop: {spare:.2f} of {os.cpu_count()} cores idle")


def test_busy_polling_burns_a_core_where_one_is_free():
    needs_a_free_core()
    with PollingServer(interval=0, record_events=False) as server:
        cost = idle_cost(server, clients=10, seconds=0.3, attempts=5, retry_below=0.8)
    assert cost.cpu >= 0.8, cost


# ------------------------------------------------------------ latency, throughput
def test_a_sleeping_poller_is_late(rows):
    by_label, _ = rows
    assert by_label["sleeping"].median_latency > 5 * by_label["selectors"].median_latency


# ----------------------------------------------------------------- neighbours
# With no core to spare, the operating system's scheduler, not the GIL, decides who runs.
def test_system_calls_beside_a_busy_loop_run_slower():
    needs_a_free_core()
    result = neighbour_slowdown("system calls", trials=5)
    assert result.slowdown.value > 1.5, result.slowdown


def test_pure_python_beside_a_busy_loop_starves_the_loop():
    # The GIL is handed over every 5 ms: the busy loop, not the computation, loses.
    needs_a_free_core()
    result = neighbour_slowdown("python", trials=5)
    assert result.rounds_beside.value < result.rounds_alone.value / 5, result


# ------------------------------------------------------------------ scaling
@pytest.fixture(scope="module")
def scaling():
    return measure_scaling([10, 100, 300, 1000, 3000])


@pytest.mark.skipif(sys.platform == "win32", reason="select() counts sockets on Windows")
def test_select_grows_with_every_socket(scaling):
    assert scaling.slope("select") > 0.7, scaling.seconds["select"]
    assert scaling.select_limit is not None and scaling.select_limit < 1024


def test_poll_grows_with_every_socket(scaling):
    if "poll" not in scaling.seconds:
        pytest.skip("no poll() on this OS")
    assert scaling.slope("poll") > 0.7, scaling.seconds["poll"]


def test_epoll_and_kqueue_do_not(scaling):
    kernel_lists = [name for name in ("epoll", "kqueue") if name in available_selectors()]
    if not kernel_lists:
        pytest.skip("neither epoll nor kqueue on this OS")
    for name in kernel_lists:
        assert abs(scaling.slope(name)) < 0.3, scaling.seconds[name]
