"""The stall gauge and the group-join watch, on a clock the test moves."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from streams.liveness import Liveness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stalled() -> float:
    return REGISTRY.get_sample_value("fraudwatch_worker_stalled_seconds") or 0.0


def _join_stalls() -> float:
    return REGISTRY.get_sample_value("fraudwatch_group_join_stalls_total") or 0.0


def test_a_caught_up_worker_is_not_stalled_and_one_with_work_is() -> None:
    clock = Clock()
    liveness = Liveness(join_timeout_s=30, clock=clock)
    liveness.observe(settled=True, lag=0)
    clock.now += 50
    liveness.observe(settled=True, lag=0)
    assert _stalled() == 0
    clock.now += 40
    liveness.observe(settled=True, lag=120)
    assert _stalled() == 40
    clock.now += 80
    liveness.report()  # as during a batch's retries, with no poll
    assert _stalled() == 120
    liveness.committed()
    assert _stalled() == 0


def test_a_join_longer_than_the_rebalance_timeout_is_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    before = _join_stalls()
    liveness = Liveness(join_timeout_s=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="fraudwatch.worker"):
        for _ in range(10):
            clock.now += 10
            liveness.observe(settled=False, lag=0)
        assert _stalled() == 100  # no settled membership counts as work waiting
        clock.now += 5
        liveness.observe(settled=True, lag=0)
    assert _join_stalls() == before + 1
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events.count("group_join_stalled") == 1
    assert events.count("group_join_late") == 1
    assert _stalled() == 0


def test_a_broker_out_of_reach_counts_as_work_and_is_logged_when_it_goes_and_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    liveness = Liveness(join_timeout_s=30, clock=clock)
    liveness.observe(settled=True, lag=0)
    with caplog.at_level(logging.INFO, logger="fraudwatch.worker"):
        for _ in range(6):
            clock.now += 10
            # The client still says caught up and settled: the last the broker told it.
            liveness.observe(settled=True, lag=0, broker_reachable=False)
        assert _stalled() == 60
        clock.now += 1
        liveness.observe(settled=True, lag=0)
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events.count("broker_unreachable") == 1
    assert events.count("broker_reachable") == 1
    # From the first poll that found it gone.
    assert [getattr(r, "seconds", None) for r in caplog.records][-1] == 51
    assert _stalled() == 0
