"""Replaying history through the worker's batch path, and `fraudwatch backtest` on top of it."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest

from models.alerts import SeverityBands
from models.dataset import FeatureTable, feature_matrix
from models.features import FEATURE_NAMES
from models.jsonl import read_lines
from models.scorer import Scorer
from models.simulator import SimulationConfig, simulate, write_simulation
from rules.loader import load_rule_library
from service.cli import main
from service.settings import DEFAULT_RULES_DIR
from streams.backtest import run_backtest
from streams.replay import memory_store, replay, replay_features

TINY = SimulationConfig(seed=3, accounts=400, days=2, fraud_share=0.05)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    write_simulation(simulate(TINY), out)
    return out


@pytest.fixture(scope="module")
def lines(tiny_dir: Path) -> list[bytes]:
    return list(read_lines(tiny_dir / "transfers.jsonl.gz"))


def _table(lines: list[bytes], tiny_dir: Path, batch_size: int) -> FeatureTable:
    profiles = read_lines(tiny_dir / "accounts.jsonl")
    ids, blocks = [], []
    for outcome in replay(lines, profiles, batch_size=batch_size):
        ids += [t.transfer_id for t in outcome.transfers]
        blocks.append(feature_matrix(outcome.features, FEATURE_NAMES))
    return FeatureTable(ids, np.empty(0), np.vstack(blocks), 0)


def test_read_lines_reads_plain_and_gzip_and_skips_blank_lines(tmp_path: Path) -> None:
    body = b'{"a": 1}\r\n\n{"b": 2}\n   \n'
    (tmp_path / "plain.jsonl").write_bytes(body)
    (tmp_path / "packed.jsonl.gz").write_bytes(gzip.compress(body))
    expected = [b'{"a": 1}', b'{"b": 2}']
    assert list(read_lines(tmp_path / "plain.jsonl")) == expected
    assert list(read_lines(tmp_path / "packed.jsonl.gz")) == expected


def test_read_lines_drops_a_byte_order_mark_before_the_first_line(tmp_path: Path) -> None:
    # Exports from Windows tools begin with one; it is the file's, not the first record's.
    body = b'\xef\xbb\xbf{"a": 1}\r\n{"b": "\xef\xbb\xbf"}\n'
    (tmp_path / "bom.jsonl").write_bytes(body)
    (tmp_path / "bom.jsonl.gz").write_bytes(gzip.compress(body))
    expected = [b'{"a": 1}', b'{"b": "\xef\xbb\xbf"}']
    assert list(read_lines(tmp_path / "bom.jsonl")) == expected
    assert list(read_lines(tmp_path / "bom.jsonl.gz")) == expected


@pytest.mark.parametrize(
    "damage", [b"\x1f\x8b\x09\x00", b"\x1f\x8b\x08\x00garbage", "cut"],
    ids=["unknown-method", "corrupt", "cut-short"],
)
def test_a_damaged_gzip_file_is_an_error_naming_it(tmp_path: Path, damage: bytes | str) -> None:
    path = tmp_path / "transfers.jsonl.gz"
    whole = gzip.compress(b'{"a": 1}\n' * 1000)
    path.write_bytes(whole[: len(whole) // 2] if damage == "cut" else damage)  # type: ignore[arg-type]
    with pytest.raises(OSError, match=f"{path}: not a readable gzip file"):
        list(read_lines(path))


def test_features_do_not_depend_on_batch_boundaries(lines: list[bytes], tiny_dir: Path) -> None:
    one_by_one = _table(lines[:300], tiny_dir, batch_size=1)
    in_batches = _table(lines[:300], tiny_dir, batch_size=128)
    assert one_by_one.transfer_ids == in_batches.transfer_ids
    np.testing.assert_array_equal(one_by_one.features, in_batches.features)


def test_replayed_features_count_rejects_and_keep_one_row_per_transfer(lines: list[bytes]) -> None:
    noisy = [lines[0], b"{not json", lines[1], lines[0], b'{"transfer_id": "x"}', lines[2]]
    table = replay_features(noisy)
    assert table.rejected == 2
    assert table.transfer_ids == [orjson.loads(line)["transfer_id"] for line in lines[:3]]
    assert table.features.shape[0] == 3


def test_a_reused_transfer_id_is_rejected_and_the_first_transfer_kept(lines: list[bytes]) -> None:
    """The same id for another payment is refused (the contract makes ids unique); the same
    transfer again is a redelivery, counted once."""
    first = orjson.loads(lines[0])
    reused = orjson.dumps(first | {"src_account": "someone-else", "amount": "7.00"})
    table = replay_features([lines[0], reused, lines[0], lines[1]])
    assert table.rejected == 1
    assert table.transfer_ids == [first["transfer_id"], orjson.loads(lines[1])["transfer_id"]]
    summary = run_backtest([lines[0], reused, lines[1]], [], _scorer(), None)
    assert summary.invalid == {"duplicate_transfer_id": 1}


def _scorer() -> Scorer:
    return Scorer(load_rule_library(DEFAULT_RULES_DIR), SeverityBands())


def test_a_feed_in_utc_replays_as_one_in_local_time_with_the_zone_configured(
    lines: list[bytes], tiny_dir: Path
) -> None:
    # The same history with every `ts` rewritten to UTC (`Z`), the same instants.
    def in_utc(line: bytes) -> bytes:
        doc = orjson.loads(line)
        instant = datetime.fromisoformat(doc["ts"]).astimezone(UTC)
        return orjson.dumps(doc | {"ts": instant.isoformat(timespec="milliseconds")})

    utc_lines = [in_utc(line) for line in lines[:400]]
    profiles = list(read_lines(tiny_dir / "accounts.jsonl"))
    rules = load_rule_library(DEFAULT_RULES_DIR)
    shanghai = Scorer(rules, SeverityBands(), local_zone=ZoneInfo("Asia/Shanghai"))
    local = replay_features(lines[:400], profiles, _scorer())
    utc = replay_features(utc_lines, profiles, shanghai)
    hour = FEATURE_NAMES.index("hour_of_day")
    assert local.transfer_ids == utc.transfer_ids
    np.testing.assert_array_equal(local.features, utc.features)
    unzoned = replay_features(utc_lines, profiles, _scorer())
    assert (unzoned.features[:, hour] != local.features[:, hour]).all()  # 8 hours off


def test_backtest_names_its_first_invalid_lines_and_warns_of_an_unsorted_history(
    lines: list[bytes],
) -> None:
    bad = [b"{broken", json.dumps({"transfer_id": "tx-neg", "phone": "+8613800138000"}).encode()]
    summary = run_backtest([*lines[:50], *bad, *lines[50:100]], [b'{"account_id": 7}'],
                           _scorer(), None)  # fmt: skip
    assert summary.rejects_named == [
        "accounts record 1: invalid_field: Expected `str`, got `int` - at `$.account_id`",
        "transfers record 51: malformed_json: not valid JSON: JSON is malformed: object keys "
        "must be strings (byte 1)",
        "transfers record 52 (tx-neg): missing_field: Object missing required field `ts`",
    ]
    text = "\n".join(summary.lines())
    assert "transfers record 52 (tx-neg): missing_field" in text
    assert "+8613800138000" not in text  # a line's content is never shown
    assert "not in event-time order" not in text
    # The same history sorted by payer, as a per-account export is.
    by_payer = sorted(lines[:300], key=lambda line: orjson.loads(line)["src_account"])
    unsorted = run_backtest(by_payer, [], _scorer(), None)
    assert unsorted.out_of_order > 0
    assert "not in event-time order" in "\n".join(unsorted.lines())
    many = run_backtest([b"{"] * 15, [], _scorer(), None)
    assert len(many.rejects_named) == 10 and "and 5 more" in "\n".join(many.lines())


def test_a_warm_up_run_again_counts_no_alert_it_counted_before(
    lines: list[bytes], tiny_dir: Path
) -> None:
    # The second run printed "transfers scored: 0 (… repeated ids ignored)" and then "alerts
    # it would have raised: 13": its counting sink did not know the first run's alerts.
    store = memory_store()
    profiles = list(read_lines(tiny_dir / "accounts.jsonl"))
    first = run_backtest(lines, profiles, _scorer(), None, store=store)
    again = run_backtest(lines, profiles, _scorer(), None, store=store)
    assert first.alerts > 0 and first.transfers == len(lines)
    assert (again.transfers, again.redeliveries, again.alerts) == (0, len(lines), 0)


def test_backtest_writes_each_alert_once_and_counts_invalid_lines(
    lines: list[bytes], tiny_dir: Path
) -> None:
    noisy = [*lines, b"{broken", json.dumps({"transfer_id": "neg"}).encode(), *lines[:50]]
    out = io.BytesIO()
    profiles = list(read_lines(tiny_dir / "accounts.jsonl"))
    summary = run_backtest(noisy, profiles, _scorer(), out, batch_size=200)
    alerts = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert summary.transfers == len(lines)
    assert summary.redeliveries == 50
    assert summary.invalid == {"malformed_json": 1, "missing_field": 1}
    assert summary.alerts == len(alerts) > 0
    assert len({a["alert_id"] for a in alerts}) == len(alerts)
    assert {a["status"] for a in alerts} == {"open"}
    assert "invalid lines: 2" in "\n".join(summary.lines())
    assert summary.lines()[-1].endswith(" transfers/s)")

    again = io.BytesIO()
    run_backtest(lines, profiles, _scorer(), again, batch_size=500)
    strip = [{**a, "created_at": None} for a in alerts]
    assert [{**orjson.loads(x), "created_at": None} for x in again.getvalue().splitlines()] == strip


def test_backtest_command_writes_gzip_alerts_and_a_summary(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "alerts.jsonl.gz"
    code = main(
        [
            "backtest",
            str(tiny_dir / "transfers.jsonl.gz"),
            "--alerts-out",
            str(out),
            "--accounts",
            str(tiny_dir / "accounts.jsonl"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    alerts = [orjson.loads(line) for line in gzip.decompress(out.read_bytes()).splitlines()]
    assert f"alerts: {len(alerts)} " in printed
    assert alerts and all(a["model"]["name"] == "fraudwatch-gbt" for a in alerts)
    assert all(any(r["rule"] == "model" for r in a["reasons"]) for a in alerts)


def test_backtest_command_refuses_a_missing_input(tmp_path: Path) -> None:
    assert main(["backtest", str(tmp_path / "nope.jsonl"), "--alerts-out", "x.jsonl"]) == 2


def test_backtest_alerts_name_the_case_they_end_in(tmp_path: Path) -> None:
    """Rings found to be one merge their cases as alerts arrive (seed 5 merges several): each
    alert of `--alerts-out` names the case it ended in, so it joins `--cases-out`."""
    data = tmp_path / "data"
    write_simulation(simulate(SimulationConfig(seed=5, accounts=400, days=2, fraud_share=0.05)),
                     data)  # fmt: skip
    out, cases_out = tmp_path / "alerts.jsonl", tmp_path / "cases.jsonl"
    assert main(["backtest", str(data / "transfers.jsonl.gz"), "--accounts",
                 str(data / "accounts.jsonl"), "--alerts-out", str(out),
                 "--cases-out", str(cases_out)]) == 0  # fmt: skip
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    cases = [orjson.loads(line) for line in cases_out.read_bytes().splitlines()]
    named = {c["case_id"]: sorted(c["alert_ids"]) for c in cases}
    assert len(alerts) > len(cases) > 1
    assert {a["case_id"] for a in alerts} == set(named)
    for case_id, alert_ids in named.items():
        assert sorted(a["alert_id"] for a in alerts if a["case_id"] == case_id) == alert_ids
