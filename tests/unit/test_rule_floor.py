"""A rule with a floor alerts whatever the model says; pattern rules stay overrulable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from models.alerts import Reason, SeverityBands
from models.events import Transfer
from models.features import FEATURE_NAMES, Features
from models.scorer import Scorer
from rules.loader import load_rule_library

LIBRARY = Path(__file__).resolve().parents[2] / "rules" / "library"


class ConfidentlyLegit:
    """A model that is sure every transfer is ordinary."""

    name, version = "stub-legit", "1"

    def probability_batch(self, features: Sequence[Features]) -> list[float]:
        return [0.01] * len(features)

    def explain_batch(self, features: Sequence[Features]) -> list[tuple[float, Reason]]:
        return [(0.01, Reason(rule="model", title="model", evidence={}, score=0.01))] * len(
            features
        )


def transfer() -> Transfer:
    return Transfer(
        transfer_id="t1", ts="2026-03-02T09:00:00+08:00", ts_ms=1772413200000,
        utc_offset_min=480, src_account="A", dst_account="B", amount=Decimal("100.00"),
        amount_minor=10000, currency="CNY",
    )  # fmt: skip


def quiet(**changes: float) -> Features:
    return {name: 0.0 for name in FEATURE_NAMES} | changes


def test_watchlist_hits_alert_at_high_even_when_the_model_disagrees() -> None:
    scorer = Scorer(load_rule_library(LIBRARY), SeverityBands(), ConfidentlyLegit())
    payee, payer = quiet(watchlist_hits=1.0, dst_watchlisted=1.0), quiet(watchlist_hits=1.0)
    verdicts = scorer.assess([transfer(), transfer()], [payee, payer])
    assert [v.severity for v in verdicts] == ["high", "high"]
    assert all(v.score >= 0.85 for v in verdicts)
    assert [[h.rule_id for h in v.hits] for v in verdicts] == [["watchlist_hit"],
                                                             ["watchlist_payer"]]  # fmt: skip


def test_pattern_rules_can_be_overruled_by_the_model() -> None:
    scorer = Scorer(load_rule_library(LIBRARY), SeverityBands(), ConfidentlyLegit())
    # No profile: a first payroll run looks the same, so the model may overrule the rule.
    fan_out = quiet(
        src_distinct_payees_1h=12, src_new_payees_24h=12, src_new_payee_share_24h=1.0,
        src_distinct_payees_24h=12, src_out_amount_24h_minor=11_880_000,
        src_is_business=math.nan, dst_is_business=math.nan,
    )  # fmt: skip
    (verdict,) = scorer.assess([transfer()], [fan_out])
    assert [h.rule_id for h in verdict.hits] == ["fan_out_rapid"]
    assert verdict.severity is None


def test_only_knowledge_alerts_on_its_own() -> None:
    # Every pattern has everyday look-alikes (a foreman paying his crew fans out from a personal
    # account, a class rep passes fees straight through): only watchlist listings, and money
    # that an alert already flagged moving on, have a floor.
    rules = load_rule_library(LIBRARY)
    floored = {rule.id for rule in rules.rules if rule.floor is not None}
    assert floored == {"watchlist_hit", "watchlist_payer", "alerted_money_onward"}
    scorer = Scorer(rules, SeverityBands(), ConfidentlyLegit())
    fan_out = quiet(
        src_distinct_payees_1h=12, src_new_payees_24h=12, src_new_payee_share_24h=1.0,
        src_distinct_payees_24h=12, src_out_amount_24h_minor=11_880_000,
        dst_is_business=math.nan,
    )  # fmt: skip
    (verdict,) = scorer.assess([transfer()], [fan_out])
    assert {h.rule_id for h in verdict.hits} == {"fan_out_rapid"}
    assert verdict.severity is None


def test_alerted_money_moving_on_alerts_when_the_model_disagrees() -> None:
    # The mule after an alert: the model that missed the first hop would miss this one too.
    scorer = Scorer(load_rule_library(LIBRARY), SeverityBands(), ConfidentlyLegit())
    onward = quiet(
        src_tainted_in_amount_24h_minor=3_000_000, src_tainted_in_count_24h=1.0,
        src_tainted_in_share_24h=1.0, src_minutes_since_tainted_in=25.0,
        src_pass_through_24h=0.98, src_is_business=math.nan, dst_is_business=math.nan,
    )  # fmt: skip
    (verdict,) = scorer.assess([transfer()], [onward])
    assert "alerted_money_onward" in {h.rule_id for h in verdict.hits}
    assert verdict.severity == "medium"
