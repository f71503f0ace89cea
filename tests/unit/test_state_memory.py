"""Window semantics of the in-memory state store (the Redis store is held equal to it by the
parity test in tests/integration)."""

from __future__ import annotations

import math
from decimal import Decimal

from models.events import AccountProfile, Transfer
from models.features import (
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MINUTE,
    NOT_LISTED,
    UNKNOWN,
    derive_features,
)
from streams.state.base import EntityHasher, StateLimits
from streams.state.memory import MemoryStateStore

T0 = 1772374503000


def transfer(tid: str, src: str, dst: str, minutes: float, amount_minor: int = 10_000,
             device: str | None = None) -> Transfer:  # fmt: skip
    return Transfer(
        transfer_id=tid, ts="x", ts_ms=T0 + int(minutes * MS_PER_MINUTE), utc_offset_min=480,
        src_account=src, dst_account=dst, amount=Decimal(amount_minor) / 100,
        amount_minor=amount_minor, currency="CNY", device_id=device,
    )  # fmt: skip


def store() -> MemoryStateStore:
    return MemoryStateStore(EntityHasher("test"), StateLimits(window_cap=100))


def test_fan_out_counts_distinct_and_first_time_payees() -> None:
    s = store()
    facts = s.apply_transfers([transfer(f"t{i}", "A", f"P{i % 3}", i) for i in range(6)])
    last = facts[-1].payer
    assert (last.out_n_1h, last.payees_1h, last.new_payees_24h) == (6, 3, 3)
    assert [f.payer.first_time_payee for f in facts] == [1, 1, 1, 0, 0, 0]


def test_redelivery_returns_first_facts_and_changes_nothing() -> None:
    s = store()
    first = s.apply_transfers([transfer("t1", "A", "B", 0), transfer("t2", "A", "C", 1)])
    again = s.apply_transfers([transfer("t1", "A", "B", 0)])
    assert again[0].payer == first[0].payer
    assert again[0].first_delivery is False
    later = s.apply_transfers([transfer("t3", "A", "D", 2)])
    assert later[0].payer.out_n_1h == 3


def test_out_of_order_event_lands_in_its_own_window() -> None:
    s = store()
    s.apply_transfers([transfer("t1", "A", "B", 120)])
    late = s.apply_transfers([transfer("t0", "A", "C", 0)])[0].payer
    # The 2-hours-later transfer is outside the late event's window ending at its own time.
    assert late.out_n_1h == 1
    assert late.first_time_payee == 1


def test_pass_through_and_dwell() -> None:
    s = store()
    s.apply_transfers([transfer("in1", "V", "M", 0, 500_000)])
    out = s.apply_transfers([transfer("out1", "M", "X", 7, 480_000)])[0]
    features = derive_features(
        transfer("out1", "M", "X", 7, 480_000), *out[:3], NOT_LISTED, out.observed_since_ms
    )
    assert features["src_pass_through_24h"] == 0.96
    assert features["src_dwell_minutes"] == 7.0


def test_an_opening_date_after_the_transfer_is_unknown_not_brand_new() -> None:
    def age(opened_at_ms: int) -> float:
        s = store()
        s.apply_profiles([AccountProfile("A", opened_at_ms=opened_at_ms)])
        facts = s.apply_transfers([transfer("t1", "A", "B", 0)])[0]
        features = derive_features(
            transfer("t1", "A", "B", 0), *facts[:3], NOT_LISTED, facts.observed_since_ms
        )
        return features["src_account_age_days"]

    assert age(T0 - 3 * MS_PER_DAY) == 3.0
    assert age(T0 + 8 * MS_PER_HOUR) == 0.0  # a date at midnight in another zone: opened today
    assert math.isnan(age(T0 + 30 * MS_PER_DAY))  # a wrong date: unknown


def test_shared_device_counts_distinct_payers() -> None:
    s = store()
    facts = s.apply_transfers(
        [transfer(f"t{i}", f"A{i}", "Z", i, device="gobox") for i in range(5)]
        + [transfer("t5", "A0", "Z", 6, device="gobox")]
    )
    assert [f.entities.device_accounts_7d for f in facts] == [1, 2, 3, 4, 5, 5]
    assert facts[0].entities.phone_accounts_7d == UNKNOWN


def test_window_cap_bounds_memory() -> None:
    s = MemoryStateStore(EntityHasher("test"), StateLimits(window_cap=10))
    facts = s.apply_transfers([transfer(f"t{i}", "A", f"P{i}", i / 10) for i in range(50)])
    # At most `cap` entries are kept; a transfer's counts are those plus itself.
    assert facts[-1].payer.out_n_1h == 11
    assert facts[-1].payer.payees_1h == 11


def test_old_entries_are_trimmed_by_event_time() -> None:
    s = store()
    s.apply_transfers([transfer("old", "A", "B", 0)])
    later = s.apply_transfers([transfer("new", "A", "B", 40 * 24 * MS_PER_HOUR / MS_PER_MINUTE)])
    assert later[0].payer.out_n_30d_prior == 0
    # The payee is still known: payee novelty is not forgotten with the windows.
    assert later[0].payer.first_time_payee == 0
