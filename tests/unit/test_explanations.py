"""Model signals in words a person can use: value, unit and direction; unknown is never shown."""

from __future__ import annotations

import math

import pytest

from models.dataset import MODEL_FEATURES
from models.explanations import PHRASES, describe, signal
from models.features import FEATURE_NAMES


def test_every_feature_has_words() -> None:
    assert set(PHRASES) == set(FEATURE_NAMES) >= set(MODEL_FEATURES)
    for name in FEATURE_NAMES:
        text = describe(name, 3.0)
        assert text and "_" not in text, name


DWELL = "money last arrived in the payer's account"
OPENED = "payer's account opened"
PASSED = "payer sent on 97% of what it received in 24 hours"


@pytest.mark.parametrize(
    ("name", "value", "push", "words"),
    [
        ("dst_account_age_days", 2.2, 1.3, "payee's account opened 2 days ago (raises)"),
        ("src_account_age_days", 0.01, 0.4, f"{OPENED} less than an hour ago (raises)"),
        ("amount_minor", 5_760_050, 0.9, "amount CNY 57,600.50 (raises)"),
        ("src_dwell_minutes", 7.4, 0.6, f"{DWELL} 7 minutes ago (raises)"),
        ("src_dwell_minutes", 4_000, -0.6, f"{DWELL} 3 days ago (lowers)"),
        ("src_pass_through_24h", 0.97, 1.1, f"{PASSED} (raises)"),
        ("dst_distinct_payers_24h", 1, -0.2, "payee was paid by 1 account in 24 hours (lowers)"),
        ("dst_is_business", 1, -2.0, "payee is a business account (lowers)"),
        ("is_first_time_payee", 1, 0.3, "first payment to this payee (raises)"),
        ("device_accounts_7d", 6, 1.5, "this device paid from 6 accounts in 7 days (raises)"),
    ],
)  # fmt: skip
def test_a_signal_reads_as_a_sentence(name: str, value: float, push: float, words: str) -> None:
    assert signal(name, value, push) == words


def test_an_unknown_value_is_never_evidence() -> None:
    for name in FEATURE_NAMES:
        assert describe(name, math.nan) is None
        assert signal(name, math.nan, 5.0) is None
