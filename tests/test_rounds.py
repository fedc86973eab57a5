"""round_cost_after: bounded in time, a figure for every setting, no socket or thread left."""

import math
import sys
import threading
import time

import pytest

from nbio_helpers.measure.rounds import round_cost_after

pytestmark = [pytest.mark.alone, pytest.mark.timeout(30)]


def test_every_setting_measured_within_budget():
    threads = threading.active_count()
    start = time.monotonic()
    costs = round_cost_after([0.001, 0.005], rounds=5, budget=2.0)
    assert time.monotonic() - start < 2.0 + 3  # budget, plus setting up 10 sockets
    assert math.isfinite(costs["busy"]) and costs["busy"] > 0
    for kind in ("spin", "sleep"):
        assert set(costs[kind]) == {0.001, 0.005}
        assert all(math.isfinite(v) and v > 0 for v in costs[kind].values())
    preempted = costs["preempted"][0.001]
    if sys.platform.startswith("linux"):
        assert 0.0 <= preempted <= 1.0
    else:
        assert preempted is None
    assert threading.active_count() == threads


def test_a_tiny_budget_cuts_the_settings_short_not_the_call():
    costs = round_cost_after([0.5], rounds=10, budget=0.2)
    assert math.isnan(costs["sleep"][0.5]) and math.isnan(costs["spin"][0.5])
