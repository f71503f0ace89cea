"""Alert propagation on the real stack: when a transfer alerts, the money it moved is followed
(`models.taint`), and the alerts and marks that follows are exactly those of an uninterrupted
run and of `fraudwatch backtest`, however the batches are cut and wherever the worker is
SIGKILLed.

The rules here are the test's own: a big payment alerts, and so does money sent on within a
day after it arrived through a transfer that alerted; each has a floor, so every hop of a chain
alerts only if the hop before it marked its payer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import redis

from service.embedded import EmbeddedServices
from service.wiring import build_scorer
from streams.backtest import run_backtest
from streams.batch import MemoryAlertSink
from tests.integration.conftest import SettingsFactory, TopicFactory
from tests.integration.harness import (
    comparable,
    lines,
    produce,
    redis_dump,
    run_after_kills,
    uninterrupted_run,
)
from tests.propagation_rules import write_propagation_rules
from tests.traffic import background, event

# Hops next to each other in the input (in one batch, or the one after), a few apart, and far
# apart (marks read back from state).
SPACINGS = (1, 4, 25)
HOPS = 4


def _at(value: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(value["ts"]))


def _traffic() -> list[dict[str, object]]:
    """Background traffic with chains laid through it (a victim's big payment, then hops of
    49,000.00), and a late big payment into an account that had paid
    out just before it arrived in the input, but after it by event time."""
    events = background(seed=11, count=700)
    inserts: list[tuple[int, dict[str, object]]] = []
    for chain, spacing in enumerate(SPACINGS):
        for hop in range(HOPS):
            src = f"c{chain}-victim" if hop == 0 else f"c{chain}-mule{hop}"
            amount = "60000.00" if hop == 0 else "49000.00"
            index = 60 + chain * 150 + spacing * hop
            at = _at(events[index]) + timedelta(milliseconds=1 + hop)
            inserts.append((index, event(f"c{chain}-h{hop}", src, f"c{chain}-mule{hop + 1}", at,
                                         amount)))  # fmt: skip
    late_at = _at(events[600])
    inserts.append((600, event("late-out", "late-acct", "late-payee", late_at, "900.00")))
    inserts.append((601, event("late-in", "late-victim", "late-acct",
                               late_at - timedelta(minutes=2), "60000.00")))
    for index, value in sorted(inserts, key=lambda pair: -pair[0]):
        events.insert(index + 1, value)
    return events


def _alerted(dump: dict[bytes, object]) -> set[str]:
    """The transfers alerted in a `comparable` dump (alert bodies decoded)."""
    return {
        str(value["transfer_id"])
        for key, value in dump.items()
        if key.startswith(b"fw:{al}:a:") and isinstance(value, dict)
    }


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_propagation_rules(tmp_path / "rules")


def test_alerts_follow_the_money_exactly_whatever_the_batches_and_kills(
    services: EmbeddedServices, redis_client: redis.Redis, make_topics: TopicFactory,
    settings_for: SettingsFactory, tmp_path: Path, rules_dir: Path,
) -> None:  # fmt: skip
    values = lines(_traffic())
    configured = partial(settings_for, rules_dir=rules_dir)
    expected = uninterrupted_run(services, make_topics, configured, values)
    alerted = _alerted(expected)
    chains = {f"c{chain}-h{hop}" for chain in range(len(SPACINGS)) for hop in range(HOPS)}
    assert chains | {"late-in"} <= alerted
    # Its money arrived later in the input: it was not known when the payer paid out.
    assert "late-out" not in alerted

    # Batches of 7 instead of 40, and the worker SIGKILLed twice mid-stream.
    topics = make_topics()
    settings = configured(topics, batch_size=7)
    produce(settings.kafka_bootstrap, topics.transfers, values)
    log = tmp_path / "worker.log"
    run_after_kills(settings, log, redis_client, (150, 450), len(values))
    assert comparable(redis_dump(redis_client)) == expected

    # The backtest, one transfer at a time and in batches of 500, raises the same alerts.
    scorer = build_scorer(settings)
    for batch_size in (1, 500):
        sink = MemoryAlertSink()
        run_backtest(values, [], scorer, None, batch_size=batch_size, sink=sink)
        assert {a.transfer_id for a in sink.alerts.values()} == alerted, batch_size
