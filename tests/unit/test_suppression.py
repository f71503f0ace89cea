"""Dismissed patterns and listed parties: what a dismissal suppresses, pure."""

from __future__ import annotations

import msgspec

from models.alerts import Reason, SeverityBands
from models.retro import listing_words, raised_by, retro_alert
from models.suppression import Suppression, Suppressions, suppressions_for

T0 = 1_772_323_200_000
ALERT = retro_alert("tx-1", "mule", "payee", T0, 500_000, "CNY", "mule",
                    listing_words("investigation", "confirmed fraud in alert al_1"),
                    SeverityBands(), "2026-03-01T00:00:00.000Z")  # fmt: skip
PATTERN = Reason(rule="fan_out_rapid", title="fan-out", evidence={"src_distinct_payees_1h": 8})


def test_a_dismissal_suppresses_the_patterns_of_an_alert_and_never_a_watchlist_reason() -> None:
    alert = msgspec.structs.replace(ALERT, reasons=[*ALERT.reasons, PATTERN])
    assert [s.rule for s in suppressions_for(alert, T0 + 1000, T0)] == ["fan_out_rapid"]


def test_a_listed_party_alerts_whatever_was_suppressed_before() -> None:
    """Suppressions stored before watchlist reasons were exempt still silence nothing of a
    transfer with a listed party."""
    alert = msgspec.structs.replace(ALERT, reasons=[PATTERN])
    stored = [Suppression("mule", rule, T0 + 10**9, {}, "al_0", T0)
              for rule in ("fan_out_rapid", "watchlist_retro")]  # fmt: skip
    in_force = Suppressions.of(1, stored)
    assert in_force.suppressed(alert, {"watchlist_hits": 0.0}) is not None
    assert in_force.suppressed(alert, {"watchlist_hits": 1.0}) is None
    assert in_force.suppressed(ALERT, {"watchlist_hits": 1.0}) is None


def test_a_retro_hunt_alert_names_the_kind_of_listing_that_raised_it() -> None:
    assert raised_by(ALERT, "investigation")
    assert not raised_by(ALERT, "police notice 12")
    assert not raised_by(msgspec.structs.replace(ALERT, reasons=[PATTERN]), "investigation")
