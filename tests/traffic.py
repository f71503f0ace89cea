"""Small, deterministic transfer streams for tests: fraud shapes and their hard negatives."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CST)
# Longer than the cold-start week (models.features.COLD_START_MS).
HISTORY = timedelta(days=8)


def event(tid: str, src: str, dst: str, at: datetime, amount: str, **extra: object) -> dict:
    """One transfer in the contract's shape."""
    return {
        "transfer_id": tid, "ts": at.isoformat(timespec="milliseconds"), "src_account": src,
        "dst_account": dst, "amount": amount, "currency": "CNY", "channel": "mobile", **extra,
    }  # fmt: skip


def fan_out_ring(prefix: str = "ring", payees: int = 12, start: datetime = T0) -> list[dict]:
    """A victim pays a mule, which splits the money across many new payees within minutes
    (one every 30 seconds, as a mule app session does).

    An ordinary payment a week and a day earlier comes first: fraudwatch has been observing
    for over a week (as after `fraudwatch warmup`), so whether a payee is new is known.
    """
    events = [
        event(f"{prefix}-history", f"{prefix}-neighbour", f"{prefix}-grocer",
              start - HISTORY, "86.50"),
        event(f"{prefix}-in", f"{prefix}-victim", f"{prefix}-mule", start, "120000.00"),
    ]  # fmt: skip
    for i in range(payees):
        events.append(
            event(f"{prefix}-out-{i}", f"{prefix}-mule", f"{prefix}-layer2-{i}",
                  start + timedelta(minutes=3, seconds=30 * i), "9900.00",
                  device_id=f"{prefix}-dev", phone="+8613800138000", ip="203.0.113.9")
        )  # fmt: skip
    return events


def payroll(employer: str = "acme-payroll", employees: int = 60, months: int = 2) -> list[dict]:
    """An established business paying the same employees on the same day each month."""
    events = []
    for month in range(months):
        payday = T0 + timedelta(days=30 * month)
        for i in range(employees):
            events.append(
                event(f"pay-{month}-{i}", employer, f"employee-{i}",
                      payday + timedelta(seconds=5 * i), f"{8000 + 37 * i}.00", channel="api")
            )  # fmt: skip
    return events


def merchant(shop: str = "corner-shop", customers: int = 150) -> list[dict]:
    """Many customers paying one established business in a day."""
    return [
        event(f"buy-{i}", f"customer-{i}", shop, T0 + timedelta(minutes=4 * i),
              f"{20 + i % 90}.50", channel="pos")
        for i in range(customers)
    ]  # fmt: skip


def profiles_for_negatives(employer: str = "acme-payroll", shop: str = "corner-shop") -> list[dict]:
    """Profiles saying the employer and the shop are old business accounts."""
    opened = (T0 - timedelta(days=3 * 365)).isoformat()
    return [
        {"account_id": employer, "opened_at": opened, "kind": "business"},
        {"account_id": shop, "opened_at": opened, "kind": "business"},
    ]


def background(seed: int, count: int, accounts: int = 300) -> list[dict]:
    """Ordinary person-to-person traffic with devices, phones and IPs; some late arrivals."""
    rng = random.Random(seed)
    events = []
    at = T0
    for i in range(count):
        at += timedelta(seconds=rng.randint(1, 90))
        src, dst = rng.sample(range(accounts), 2)
        late = timedelta(minutes=rng.randint(1, 9)) if rng.random() < 0.02 else timedelta()
        events.append(
            event(f"bg-{seed}-{i}", f"person-{src}", f"person-{dst}", at - late,
                  f"{rng.randint(1, 5000)}.{rng.randint(0, 99):02d}",
                  device_id=f"device-{src % 250}", phone=f"+86139{src:08d}",
                  ip=f"198.51.100.{src % 200}")
        )  # fmt: skip
    return events


def as_jsonl(events: list[dict]) -> bytes:
    """JSON Lines bytes of the events."""
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def ordinary_p2p(
    seed: int, count: int = 200, accounts: int = 40, sessions: bool = False
) -> list[dict]:
    """Everyday person-to-person payments within one day (09:00-18:00): friends and
    colleagues paying each other 50-950, each account paying and being paid several times.
    With `sessions`, each payer's own device, phone and IP; without, none (a bank need not
    send them)."""
    rng = random.Random(seed)
    events = []
    for i in range(count):
        at = T0 + timedelta(seconds=rng.randrange(9 * 3600))
        src, dst = rng.sample(range(accounts), 2)
        extra: dict[str, object] = {}
        if sessions:
            extra = {"device_id": f"phone-{src}", "phone": f"+86139{src:08d}",
                     "ip": f"10.7.{src}.20"}  # fmt: skip
        events.append(
            event(f"p2p-{seed}-{i}", f"friend-{src:02d}", f"friend-{dst:02d}", at,
                  f"{rng.randint(50, 950)}.00", **extra)
        )  # fmt: skip
    return sorted(events, key=lambda e: str(e["ts"]))


def ordinary_profiles(accounts: int = 40) -> list[dict]:
    """Profiles of `ordinary_p2p`'s accounts: personal, opened in 2019, holders in their 40s."""
    return [
        {"account_id": f"friend-{a:02d}", "opened_at": "2019-05-01T10:00:00+08:00",
         "kind": "personal", "holder_birth_year": 1983}
        for a in range(accounts)
    ]  # fmt: skip
