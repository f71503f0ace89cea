"""Known fan-out rings for the latency phase, so that short runs still raise enough alerts.

Each ring is a fresh payer (no profile) paying 1,000.00 to 20 first-time payees in a row; from
its 8th payee on, the `fan_out_rapid` rule fires on every transfer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from models.simulator.formatting import format_ts

RING_SIZE = 20
MAX_RATE = 20.0  # injected transfers per second, at most
MAX_SHARE = 0.05  # of the offered rate, at most


def injection_rate(offered_rate: float) -> float:
    """Injected transfers per second for an offered rate."""
    return min(MAX_RATE, MAX_SHARE * offered_rate)


def fan_out_rings() -> Iterator[dict[str, object]]:
    """Endless fan-out transfers (contract §1 dicts) stamped with the current time."""
    run = uuid.uuid4().hex[:8]
    ring = 0
    while True:
        payer = f"lt-mule-{run}-{ring}"
        for payee in range(RING_SIZE):
            yield {
                "transfer_id": f"lt-fo-{run}-{ring}-{payee}",
                "ts": format_ts(int(time.time() * 1000)),
                "src_account": payer,
                "dst_account": f"lt-payee-{run}-{ring}-{payee}",
                "amount": "1000.00",
                "currency": "CNY",
                "channel": "mobile",
            }
        ring += 1
