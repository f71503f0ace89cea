"""Which account an alert suspects: the strongest rule's declared party, else the model's."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from models.alerts import Reason, build_alert, suspect_party
from models.events import Transfer
from models.features import feature_party
from rules.loader import load_rule_library

LIBRARY = Path(__file__).resolve().parents[2] / "rules" / "library"


def reason(rule: str, suspect: str | None, score: float) -> Reason:
    return Reason(rule=rule, title=rule, evidence={}, score=score, suspect=suspect)  # type: ignore[arg-type]


def transfer() -> Transfer:
    return Transfer(
        transfer_id="t1", ts="2026-03-02T09:00:00+08:00", ts_ms=1772413200000,
        utc_offset_min=480, src_account="PAYER", dst_account="PAYEE", amount=Decimal("100.00"),
        amount_minor=10000, currency="CNY",
    )  # fmt: skip


def test_every_library_rule_declares_the_party_it_suspects() -> None:
    parties = {rule.id: rule.suspect for rule in load_rule_library(LIBRARY).rules}
    assert parties["fan_out_rapid"] == "payer"
    assert parties["mule_pass_through"] == "payer"
    assert parties["fan_in_collection"] == "payee"
    assert parties["vulnerable_customer_new_payee"] == "payee"
    assert parties["watchlist_hit"] == "payee"
    assert parties["watchlist_payer"] == "payer"


def test_the_strongest_rule_names_the_suspect_even_when_the_model_scores_higher() -> None:
    reasons = [reason("model", "payee", 0.95), reason("mule_pass_through", "payer", 0.7),
               reason("fan_in_collection", "payee", 0.6)]  # fmt: skip
    assert suspect_party(reasons) == "payer"
    alert = build_alert(transfer(), 0.9, "high", reasons, None, "2026-03-02T01:00:00.000Z")
    assert alert.suspect_account == "PAYER"


def test_a_model_only_alert_suspects_whom_its_strongest_evidence_is_about() -> None:
    alert = build_alert(transfer(), 0.9, "high", [reason("model", "payee", 0.9)], None, "x")
    assert alert.suspect_account == "PAYEE"
    assert feature_party("dst_in_count_1h") == "payee"
    assert feature_party("src_pass_through_24h") == "payer"
    assert feature_party("device_accounts_7d") == "payer"
    # What the payment looks like is evidence against where it goes (a victim's payment).
    assert feature_party("amount_to_avg_30d") == "payee"
    assert feature_party("is_first_time_payee") == "payee"
