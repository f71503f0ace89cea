"""Offline replay against the live path: same features as Redis, same alerts as the worker."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis

from models.features import FEATURE_NAMES
from models.jsonl import read_lines
from models.simulator import SimulationConfig, simulate, write_simulation
from service.settings import DEFAULT_MODEL_PATH
from service.wiring import build_scorer, case_settings
from streams.backtest import run_backtest
from streams.batch import CasedAlertSink, MemoryAlertSink
from streams.replay import memory_store, replay
from streams.state.base import EntityHasher, StateStore
from streams.state.case_memory import MemoryCases
from streams.state.case_store import CASES_ALL, CaseReader
from streams.state.redis_store import RedisStateStore
from tests.integration.conftest import SettingsFactory, TopicFactory, TopicReader, TopicSet
from tests.integration.harness import (
    committed,
    committed_total,
    produce,
    wait_for,
    worker_thread,
)

# A fraud-rich tiny run (real prevalence is far lower): enough alerts to compare.
TINY = SimulationConfig(seed=5, accounts=400, days=2, fraud_share=0.05)
# A bank's first week, without profiles, at real prevalence: 31,150 transfers, 32 alerts.
WEEK = SimulationConfig(seed=55, accounts=3000, days=7, profile_coverage="none")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    write_simulation(simulate(TINY), out)
    return out


@pytest.fixture(scope="module")
def week_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("week")
    write_simulation(simulate(WEEK), out)
    return out


def _features(store: StateStore, tiny_dir: Path) -> tuple[list[str], np.ndarray]:
    ids, rows = [], []
    profiles = read_lines(tiny_dir / "accounts.jsonl")
    for outcome in replay(read_lines(tiny_dir / "transfers.jsonl.gz"), profiles, store=store):
        ids += [t.transfer_id for t in outcome.transfers]
        rows += [[f[name] for name in FEATURE_NAMES] for f in outcome.features]
    return ids, np.array(rows)


def test_replay_features_are_identical_in_memory_and_in_redis(
    redis_client: redis.Redis, tiny_dir: Path
) -> None:
    in_memory = _features(memory_store(), tiny_dir)
    in_redis = _features(RedisStateStore(redis_client, EntityHasher("parity")), tiny_dir)
    assert in_memory[0] == in_redis[0]
    assert len(in_memory[0]) > 1000
    # NaN-aware and exact: no tolerance, the two paths must agree bit for bit.
    np.testing.assert_array_equal(in_memory[1], in_redis[1])


def _comparable(alert: dict) -> dict:
    return {key: value for key, value in alert.items() if key != "created_at"}


def test_backtest_raises_exactly_the_alerts_of_the_streaming_worker(
    services,
    redis_client: redis.Redis,
    topics: TopicSet,
    settings_for: SettingsFactory,
    read_topic: TopicReader,
    tiny_dir: Path,
) -> None:
    # The shipped model explicitly: this test is about the model's alerts too.
    settings = settings_for(topics, batch_size=200, model_path=DEFAULT_MODEL_PATH)
    transfers = list(read_lines(tiny_dir / "transfers.jsonl.gz"))
    profiles = list(read_lines(tiny_dir / "accounts.jsonl"))
    out = io.BytesIO()
    cases = MemoryCases(case_settings(settings))
    summary = run_backtest(transfers, profiles, build_scorer(settings), out,
                           sink=CasedAlertSink(MemoryAlertSink(), cases))  # fmt: skip
    expected = [_comparable(orjson.loads(line)) for line in out.getvalue().splitlines()]
    assert summary.alerts == len(expected) > 5
    assert all(alert["model"] is not None for alert in expected)
    # Each alert names its case, as the worker's do (compared below, field by field).
    assert all(alert["case_id"].startswith("cs_") for alert in expected)

    # Profiles first, as the backtest applies them, then the transfers on one partition.
    produce(settings.kafka_bootstrap, topics.accounts, profiles, key_field="account_id")
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.accounts) == len(profiles), what="profiles")
        produce(settings.kafka_bootstrap, topics.transfers, transfers)
        wait_for(lambda: committed(settings, topics.transfers) == len(transfers),
                 timeout_s=120, what="transfers")  # fmt: skip
    streamed = [_comparable(orjson.loads(r.value)) for r in read_topic(topics.alerts)]
    by_id = {alert["alert_id"]: alert for alert in streamed}
    assert len(by_id) == len(streamed)
    assert sorted(by_id) == sorted(alert["alert_id"] for alert in expected)
    for alert in expected:
        assert by_id[alert["alert_id"]] == alert
    # And the cases they end in: the same ids, alerts and suspects.
    reader = CaseReader(redis_client)
    live = [m.decode() for m in redis_client.zrange(CASES_ALL, 0, -1)]  # type: ignore[union-attr]
    stored = {r.case_id: (sorted(reader.alert_ids(r.case_id, 10_000)[1]), r.suspects)
              for r in reader.records(live)}  # fmt: skip
    assert stored == {d["case_id"]: (sorted(d["alert_ids"]), d["suspects"])
                      for d in cases.documents()}  # fmt: skip


@pytest.mark.parametrize("produced", ["before", "while"], ids=["backlog", "replay-live"])
def test_history_on_three_partitions_raises_the_backtests_alerts(
    produced: str,
    redis_client: redis.Redis,
    make_topics: TopicFactory,
    settings_for: SettingsFactory,
    read_topic: TopicReader,
    week_dir: Path,
) -> None:
    """A worker reads its partitions merged in event time, so features that span partitions
    see what a one-partition replay sees: whether it catches up on a backlog (after downtime)
    or history is produced while it runs (a bank's first files, event time running far faster
    than the clock), rather than one partition's days before another's."""
    topics = make_topics(partitions=3)
    settings = settings_for(topics, batch_size=200, model_path=DEFAULT_MODEL_PATH)
    transfers = list(read_lines(week_dir / "transfers.jsonl.gz"))
    # Dead-lettered whatever the order: times outside the accepted range must not hold back
    # (year 9999) or jump ahead of (year 1) the rest of their partition.
    for at, ts in ((3_000, "9999-12-31T23:59:59+00:00"), (9_000, "0001-01-01T00:00:00+00:00")):
        hostile = orjson.loads(transfers[at]) | {"transfer_id": f"hostile-{at}", "ts": ts}
        transfers.insert(at, orjson.dumps(hostile))
    out = io.BytesIO()
    run_backtest(transfers, [], build_scorer(settings), out, sink=MemoryAlertSink())
    expected = sorted(orjson.loads(line)["alert_id"] for line in out.getvalue().splitlines())

    if produced == "before":
        produce(settings.kafka_bootstrap, topics.transfers, transfers)
    with worker_thread(settings) as worker:
        if produced == "while":
            wait_for(lambda: bool(worker.consumer.assignment()), what="partitions assigned")
            # Slower than the worker reads, so it keeps running its partitions dry.
            for lo in range(0, len(transfers), 250):
                produce(settings.kafka_bootstrap, topics.transfers, transfers[lo : lo + 250])
        wait_for(lambda: committed_total(settings, topics.transfers, 3) == len(transfers),
                 timeout_s=120, what="transfers")  # fmt: skip
    streamed = sorted(orjson.loads(r.value)["alert_id"] for r in read_topic(topics.alerts))
    assert len(expected) > 20
    assert streamed == expected
