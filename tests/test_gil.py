"""nbio_helpers.measure.gil: the busy loop and its neighbours (structure only: the slowdown
itself is a measurement, reported, not asserted)."""

import pytest

from nbio_helpers import running_servers
from nbio_helpers.measure import WORKLOADS, NeighbourSlowdown, neighbour_slowdown

pytestmark = [pytest.mark.alone, pytest.mark.timeout(60)]


@pytest.mark.parametrize("work", list(WORKLOADS))
def test_neighbour_slowdown_measures_each_trial_and_stops_its_server(work):
    result = neighbour_slowdown(work, trials=2, window=0.01)
    assert isinstance(result, NeighbourSlowdown) and result.work == work
    assert len(result.alone.trials) == 4 and len(result.beside.trials) == 2
    assert len(result.slowdown.trials) == 2 and result.slowdown.value > 0
    assert result.rounds_alone.value > 0  # the busy loop went round meanwhile
    assert running_servers() == {}


def test_any_callable_is_a_workload():
    calls = []
    result = neighbour_slowdown(lambda: calls.append(1), trials=1, window=0.0)
    assert result.work == "<lambda>" and len(calls) == 4  # warm-up, alone, beside, alone
