"""The stall gauge and the group-join watch, on a clock the test moves."""

from __future__ import annotations

import logging
import time

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


def test_every_turn_of_the_loop_moves_the_heartbeat() -> None:
    # A frozen worker keeps a stall of 0; only a heartbeat that stops moving tells.
    liveness = Liveness(join_timeout_s=30, clock=Clock())
    before = time.time()
    liveness.observe(settled=True, lag=0)
    beat = REGISTRY.get_sample_value("fraudwatch_worker_heartbeat_timestamp_seconds")
    assert beat is not None and before <= beat <= time.time()


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


def test_the_stall_gauge_of_a_worker_that_is_gone_is_not_read(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the embedded stack's shared metrics directory a `livemax` gauge reads the largest
    value of every process's file: a worker that stalled, was killed and started again must
    not page for good with its dead predecessor's figure."""
    import os
    import subprocess
    import sys

    import redis

    from service.metrics import render_metrics

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    setting = "from streams import metrics; metrics.WORKER_STALLED_SECONDS.set({})"
    subprocess.run([sys.executable, "-c", setting.format(130.3)], env=env, check=True)  # died
    alive = subprocess.Popen([sys.executable, "-c", setting.format(1.5) + "; import time; "
                              "time.sleep(60)"], env=env)  # fmt: skip
    try:
        for _ in range(100):  # until the living one has written its figure
            if len(list(tmp_path.glob("gauge_livemax_*.db"))) == 2:
                break
            time.sleep(0.05)
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        offline = redis.Redis(port=1, socket_connect_timeout=0.1)  # (not needed here)
        text = render_metrics(offline)[0].decode()
    finally:
        alive.kill()
        alive.wait()
    assert "fraudwatch_worker_stalled_seconds 1.5" in text, text
    assert "130.3" not in text
