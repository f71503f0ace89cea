"""`fraudwatch warmup`: history replayed into the live Redis state raises nothing, and the live
stream after it is scored exactly as one backtest over history and live together scores it."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import orjson
import pytest
import redis

from models.events import parse_transfer
from models.features import MS_PER_DAY
from models.simulator import SimulationConfig, simulate
from service.cli import main
from service.settings import DEFAULT_MODEL_PATH
from service.wiring import build_scorer
from streams.backtest import run_backtest
from tests.integration.conftest import SettingsFactory, TopicReader, TopicSet
from tests.integration.harness import committed, produce, wait_for, worker_thread

# Nine days, so that the live part comes after the first week of observation (when whether a
# payee is new becomes known); fraud-rich so that both parts raise alerts.
HISTORY = SimulationConfig(seed=10, accounts=300, days=9, fraud_share=0.05)


def _comparable(alert: dict) -> dict:
    # Cases group the alerts raised: a warm-up raises none, so a live alert's case may be one
    # that, in a backtest over both, a history alert opened. The alert itself is the same.
    return {key: value for key, value in alert.items() if key not in ("created_at", "case_id")}


def _account_state(client: redis.Redis) -> dict[bytes, object]:
    """Every account's windows and meta hash, as stored."""
    state: dict[bytes, object] = {}
    for key in client.scan_iter(match="fw:{a:*}"):
        if client.type(key) == b"zset":
            state[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            state[key] = client.hgetall(key)
    return state


def test_warmup_then_live_scores_the_live_part_as_one_backtest_over_both(
    services,
    redis_client: redis.Redis,
    topics: TopicSet,
    settings_for: SettingsFactory,
    read_topic: TopicReader,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulate(HISTORY)
    lines = [orjson.dumps(t) for t in sim.transfers]
    profiles = [orjson.dumps(p) for p in sim.accounts]
    # The first eight days are history; the ninth arrives live.
    cut = HISTORY.start_ms + 8 * MS_PER_DAY
    split = next(i for i, line in enumerate(lines) if parse_transfer(line).ts_ms >= cut)
    history, live = lines[:split], lines[split:]
    live_ids = {parse_transfer(line).transfer_id for line in live}

    settings = settings_for(topics, batch_size=200, model_path=DEFAULT_MODEL_PATH)
    out = io.BytesIO()
    run_backtest(history + live, profiles, build_scorer(settings), out)
    everything = [_comparable(orjson.loads(line)) for line in out.getvalue().splitlines()]
    expected = [alert for alert in everything if alert["transfer_id"] in live_ids]
    history_alerts = len(everything) - len(expected)
    assert expected and history_alerts > 0

    history_file, accounts_file = tmp_path / "history.jsonl.gz", tmp_path / "accounts.jsonl"
    history_file.write_bytes(gzip.compress(b"\n".join(history) + b"\n"))
    accounts_file.write_bytes(b"\n".join(profiles) + b"\n")
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FRAUDWATCH_REDIS_URL", services.redis_url)
    monkeypatch.setenv("FRAUDWATCH_MODEL_PATH", str(DEFAULT_MODEL_PATH))
    assert main(["warmup", str(history_file), "--accounts", str(accounts_file)]) == 0
    printed = capsys.readouterr().out
    assert f"transfers scored: {len(history)} " in printed
    assert f"alerts it would have raised (none were raised): {history_alerts} " in printed
    # The simulated history is from March: too old for live traffic now, and warmup says so.
    assert "more than 30 days ago: the windows keep that much event time" in printed
    assert not list(redis_client.scan_iter(match="fw:{al}*")), "warmup stored an alert"
    # Running it again changes no account's state: a transfer whose facts are still kept (the
    # dedupe horizon, in event time) is recognised, an older one is counted again but finds its
    # window entries already there.
    before = _account_state(redis_client)
    assert main(["warmup", str(history_file)]) == 0
    assert "repeated ids ignored" in capsys.readouterr().out
    assert _account_state(redis_client) == before
    assert not list(redis_client.scan_iter(match="fw:{al}*")), "warmup stored an alert"

    with worker_thread(settings):
        produce(settings.kafka_bootstrap, topics.transfers, live)
        wait_for(lambda: committed(settings, topics.transfers) == len(live),
                 timeout_s=120, what="live transfers")  # fmt: skip
    streamed = [_comparable(orjson.loads(r.value)) for r in read_topic(topics.alerts)]
    assert sorted(streamed, key=lambda a: a["alert_id"]) == sorted(
        expected, key=lambda a: a["alert_id"]
    )

    # History older than what the live state already observed would be scored as cold start:
    # warmup refuses it rather than mix it in.
    older = orjson.loads(history[0])
    older.update(transfer_id="older-1", ts="2026-02-01T10:00:00.000+08:00")
    older_file = tmp_path / "older.jsonl"
    older_file.write_bytes(orjson.dumps(older) + b"\n")
    assert main(["warmup", str(older_file)]) == 2
    assert "warm up with history before live traffic starts" in capsys.readouterr().err
