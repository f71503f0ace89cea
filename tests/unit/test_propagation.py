"""Alert propagation (models.taint, streams.propagation) on the in-memory state: which marks
count for a transfer, and a replay that follows the money the same way however it is cut."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from models.alerts import Alert, SeverityBands
from models.features import MS_PER_HOUR, NO_TAINT, Taint
from models.scorer import Scorer
from models.taint import TAINT_CAP, TaintMark, decode_marks, encode_marks, keep_marks, taint_of
from models.training import PartlyMarkingScorer
from rules.loader import load_rule_library
from service.settings import DEFAULT_RULES_DIR
from streams.replay import replay
from tests.propagation_rules import write_propagation_rules

T0 = datetime(2026, 3, 2, 9, 0)


def _mark(tid: str, ts_ms: int, offset: int, partition: int = 0) -> TaintMark:
    return TaintMark(tid, ts_ms, 1_000, partition, offset)


def test_a_mark_counts_only_for_later_transfers_within_the_day() -> None:
    old = -25 * MS_PER_HOUR
    marks = [_mark("early", 0, 1), _mark("late-in-input", 10, 9), _mark("old", old, 0)]
    assert taint_of("t", 20, 0, 5, marks) == Taint(1_000, 1, 0)
    # From another partition, a stored mark counts: the order between partitions is not fixed.
    assert taint_of("t", 20, 1, 5, marks) == Taint(2_000, 2, 10)
    # Not before its own money arrived, nor for the transfer that made it.
    assert taint_of("t", -1, 0, 5, marks) == NO_TAINT
    assert taint_of("early", 20, 0, 5, marks[:1]) == NO_TAINT


def test_marks_are_kept_once_newest_first_within_the_cap_and_survive_encoding() -> None:
    kept: tuple[TaintMark, ...] = ()
    for n in range(TAINT_CAP + 5):
        kept = keep_marks(kept, _mark(f"m{n}", n, n)) or kept
    assert len(kept) == TAINT_CAP and kept[0].transfer_id == "m5"
    assert keep_marks(kept, kept[3]) is None
    assert keep_marks(kept, _mark("ancient", -26 * MS_PER_HOUR, 0)) is None
    assert decode_marks(encode_marks(kept)) == kept
    assert decode_marks(b"junk;a,1,2,3,4;b,x,1,1,1") == (TaintMark("a", 1, 2, 3, 4),)


def _event(tid: str, src: str, dst: str, minutes: float, amount: str) -> bytes:
    at = T0 + timedelta(minutes=minutes)
    return orjson.dumps({"transfer_id": tid, "ts": at.isoformat() + "+00:00", "src_account": src,
                         "dst_account": dst, "amount": amount, "currency": "CNY"})  # fmt: skip


@pytest.fixture
def scorer(tmp_path: Path) -> Scorer:
    bands = SeverityBands(alert_threshold=0.5, medium=0.6, high=0.8, critical=0.9)
    return Scorer(load_rule_library(write_propagation_rules(tmp_path)), bands)


def _alerts(lines: list[bytes], scorer: Scorer, batch_size: int) -> dict[str, Alert]:
    return {alert.transfer_id: alert
            for outcome in replay(lines, scorer=scorer, batch_size=batch_size)
            for alert in outcome.alerts}  # fmt: skip


def _alerted(lines: list[bytes], scorer: Scorer, batch_size: int) -> set[str]:
    return set(_alerts(lines, scorer, batch_size))


def test_the_money_is_followed_hop_by_hop_whatever_the_batches(scorer: Scorer) -> None:
    lines = [
        _event("noise-1", "a", "b", 0, "20.00"),
        _event("in", "victim", "m1", 1, "60000.00"),
        _event("hop-1", "m1", "m2", 2, "59000.00"),
        _event("hop-2", "m2", "m3", 3, "58000.00"),
        _event("noise-2", "b", "m3", 3.5, "10.00"),
        _event("hop-3", "m3", "m4", 4, "57000.00"),
        # Paid out before the alerted money arrived (by event time): not tainted by it,
        # though that money is earlier in the input.
        _event("late-in", "victim-2", "x", 30, "60000.00"),
        _event("before", "x", "y", 20, "100.00"),
        _event("after", "x", "z", 31, "100.00"),
        # Money that arrived more than 24 hours before no longer counts.
        _event("next-day", "m2", "q", 3 + 24 * 60 + 1, "100.00"),
    ]
    expected = {"in", "hop-1", "hop-2", "hop-3", "late-in", "after"}
    for batch_size in (1, 2, 3, 4, 100):
        assert _alerted(lines, scorer, batch_size) == expected, batch_size


def test_a_payer_marked_later_in_the_input_is_not_tainted_for_what_it_paid_before(
    scorer: Scorer,
) -> None:
    # Same event time, the payment out first in the input: its money was not known yet.
    lines = [
        _event("out", "m", "n", 5, "100.00"),
        _event("in", "v", "m", 5, "60000.00"),
    ]
    for batch_size in (1, 2):
        assert _alerted(lines, scorer, batch_size) == {"in"}


def test_training_marks_leave_out_a_fixed_random_share_of_the_payees(scorer: Scorer) -> None:
    marking = PartlyMarkingScorer(scorer, 0.5, seed=7)
    accounts = [f"account-{n}" for n in range(1000)]
    unmarked = [account for account in accounts if marking.unmarked(account)]
    assert 400 < len(unmarked) < 600
    assert unmarked == [a for a in accounts if PartlyMarkingScorer(scorer, 0.5, 7).unmarked(a)]
    assert unmarked != [a for a in accounts if PartlyMarkingScorer(scorer, 0.5, 8).unmarked(a)]
    marked = [account for account in accounts if not marking.unmarked(account)]

    def chain(mule: str) -> list[bytes]:
        return [_event(f"in-{mule}", "victim", mule, 1, "60000.00"),
                _event(f"hop-{mule}", mule, marked[0], 2, "100.00")]  # fmt: skip

    # Into a marked account the money is followed as the worker follows it; into an unmarked
    # one the payment raises no alert, so the hop after it is scored without taint.
    assert _alerted(chain(marked[1]), marking, 10) == {f"in-{marked[1]}", f"hop-{marked[1]}"}
    assert _alerted(chain(unmarked[0]), marking, 10) == set()
    assert _alerted(chain(unmarked[0]), scorer, 10) == {f"in-{unmarked[0]}", f"hop-{unmarked[0]}"}


def test_the_shipped_rule_follows_alerted_money_that_moves_on(tmp_path: Path) -> None:
    # The test rule alerts the victims' big payments (50,000.00 or more); the shipped
    # `alerted_money_onward` then alerts each relay of that money within 4 hours, and not the
    # account that keeps what it was paid.
    library = write_propagation_rules(tmp_path / "rules")
    (library / "tainted_onward.yaml").unlink()
    shipped = DEFAULT_RULES_DIR / "alerted_money_onward.yaml"
    (library / shipped.name).write_text(shipped.read_text())
    scorer = Scorer(load_rule_library(library), SeverityBands())
    lines = [
        _event("in", "victim", "m1", 0, "60000.00"),
        _event("hop-1", "m1", "m2", 20, "49000.00"),
        _event("hop-2", "m2", "m3", 45, "48000.00"),
        _event("paid", "victim-2", "seller", 0, "60000.00"),
        _event("bill", "seller", "utility", 30, "150.00"),
        # The relay after the marks are more than 4 hours old.
        _event("late-in", "victim-3", "n1", 0, "60000.00"),
        _event("late-hop", "n1", "n2", 300, "49000.00"),
    ]
    for batch_size in (1, 3, 500):
        alerts = _alerts(lines, scorer, batch_size)
        assert set(alerts) == {"in", "hop-1", "hop-2", "paid", "late-in"}
        for hop in ("hop-1", "hop-2"):
            assert [r.rule for r in alerts[hop].reasons] == ["alerted_money_onward"]
            assert alerts[hop].severity == "medium"


def test_an_account_paid_by_more_alerts_than_it_keeps_counts_the_same_whatever_the_batches(
    scorer: Scorer,
) -> None:
    # Forty alerted payments in 40 minutes: the account keeps the newest TAINT_CAP marks, and
    # the transfer out counts those, whether the marks came through state or in its batch.
    lines = [_event(f"in-{n}", f"victim-{n}", "collector", n, "50000.00") for n in range(40)]
    lines.append(_event("out", "collector", "next", 45, "100.00"))
    for batch_size in (1, 7, 500):
        (taint,) = [
            (f["src_tainted_in_count_24h"], f["src_tainted_in_amount_24h_minor"])
            for outcome in replay(lines, scorer=scorer, batch_size=batch_size)
            for t, f in zip(outcome.transfers, outcome.features, strict=True)
            if t.transfer_id == "out"
        ]
        assert taint == (TAINT_CAP, TAINT_CAP * 5_000_000)
