"""Two rules for the alert-propagation tests: a big payment alerts (and marks its payee), and
money that arrived through an alerted transfer alerts when it is sent on."""

from __future__ import annotations

from pathlib import Path

_RULES = {
    "big_payment.yaml": """
id: test_big_payment
version: 1
title: A big payment
description: A payment of 50,000.00 or more (a test rule).
when: {all: [{feature: amount_minor, gte: 5000000}]}
suspect: payee
score: 1.0
floor: 0.95
evidence: [amount_minor]
""",
    "tainted_onward.yaml": """
id: test_tainted_onward
version: 1
title: Money that arrived through an alerted transfer sent on
description: The payer received money through a transfer that alerted in 24 hours (a test rule).
when: {all: [{feature: src_tainted_in_count_24h, gte: 1}]}
suspect: payer
score: 1.0
floor: 0.95
evidence: [src_tainted_in_count_24h]
""",
}


def write_propagation_rules(directory: Path) -> Path:
    """Write the two rules into `directory` (made if missing) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in _RULES.items():
        (directory / name).write_text(text)
    return directory
