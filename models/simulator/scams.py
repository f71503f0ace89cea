"""Victim-facing typologies: mule chains, threshold fan-out, fan-in collection, elderly
tranches, and low-and-slow rings. Sizes, amounts and delays are drawn from ranges per ring."""

from __future__ import annotations

import itertools

from models.simulator.config import MS_PER_DAY, MS_PER_HOUR
from models.simulator.rings import Arrival, Ring

_THRESHOLDS_FEN = (5_000_000, 2_000_000, 1_000_000, 500_000)  # 50k, 20k, 10k, 5k CNY


def gather(flows: list[dict[int, list[Arrival]]]) -> dict[int, list[Arrival]]:
    merged: dict[int, list[Arrival]] = {}
    for flow in flows:
        for dst, arrivals in flow.items():
            merged.setdefault(dst, []).extend(arrivals)
    return merged


def collect(ring: Ring, victims: int, collector: int, spread_ms: int) -> list[Arrival]:
    """`victims` victims pay `collector`, starting within `spread_ms` of the ring's start."""
    arrivals: list[Arrival] = []
    for victim in ring.victims(victims):
        start = ring.t0 + ring.rnd.randrange(max(1, spread_ms))
        arrivals.extend(ring.victim_payments(victim, collector, start))
    return arrivals


def layers(ring: Ring, head: int, arrivals: list[Arrival], widths: list[int]) -> None:
    """Layer the money from `head` through mule layers of the given widths, then cash out."""
    current = {head: arrivals}
    for width in widths:
        layer = ring.mules(width)
        flows = []
        for src, got in current.items():
            fan = ring.rnd.randint(1, min(3, width))
            flows.append(ring.forward(src, got, ring.rnd.sample(layer, fan)))
        current = gather(flows)
    for mule, got in current.items():
        ring.cash_out(mule, got)


def mule_chain(ring: Ring) -> None:
    """Victims pay a first-layer mule; 1-3 layers of mules pass it on; the last cash out."""
    collector = ring.mule()
    arrivals = collect(ring, ring.rnd.randint(1, 5), collector, 6 * MS_PER_HOUR)
    widths = [ring.rnd.randint(1, 4) for _ in range(ring.rnd.randint(1, 3))]
    layers(ring, collector, arrivals, widths)


def threshold_fanout(ring: Ring) -> None:
    """A collector splits a large sum at once into many transfers just under a review
    threshold, each to a different new payee, who cash out."""
    collector = ring.mule()
    arrivals = collect(ring, ring.rnd.randint(2, 4), collector, 3 * MS_PER_HOUR)
    if not arrivals:
        return
    total = ring.cut(sum(a for _, a in arrivals))
    # The largest threshold that still makes at least six pieces of the sum.
    threshold = next((t for t in _THRESHOLDS_FEN if total >= 6 * t), _THRESHOLDS_FEN[-1])
    ts = max(t for t, _ in arrivals) + ring.dwell(2, 40)
    parts: list[int] = []
    while total > threshold // 2 and len(parts) < 60:
        # Just under the line: 49,900-49,990 for 50k, 9,990-9,999 style for smaller ones.
        part = threshold - ring.rnd.randint(1, max(2, threshold // 500 // 100)) * 100
        parts.append(min(part, total))
        total -= parts[-1]
    payees = ring.mules(max(3, min(len(parts), ring.rnd.randint(8, 40))))
    received: dict[int, list[Arrival]] = {}
    for n, part in enumerate(parts):
        payee = payees[n % len(payees)]
        received.setdefault(payee, []).append(ring.move(collector, payee, ts, part))
        ts += ring.rnd.randint(10_000, 90_000)
    for payee, got in received.items():
        ring.cash_out(payee, got)


def fan_in_collection(ring: Ring) -> None:
    """Many victims pay one young account within hours; it sweeps the money on in batches."""
    collector = ring.mule()
    arrivals = collect(
        ring, ring.rnd.randint(8, 60), collector, ring.rnd.randint(1, 12) * MS_PER_HOUR
    )
    arrivals.sort()
    onward = ring.mules(ring.rnd.randint(1, 3))
    batch = ring.rnd.randint(3, 8)
    flows = [
        ring.forward(collector, arrivals[i : i + batch], [ring.rnd.choice(onward)], (2, 30))
        for i in range(0, len(arrivals), batch)
    ]
    for mule, got in gather(flows).items():
        ring.cash_out(mule, got)


def elderly_tranches(ring: Ring) -> None:
    """An elderly victim pays a new payee in 2-6 tranches over hours or days."""
    payee = ring.mule()
    victims = ring.victims(1)
    if not victims:
        return
    onward = ring.mules(ring.rnd.randint(1, 2))
    ts = ring.t0
    for _ in range(ring.rnd.randint(2, 6)):
        amount = ring.rnd.randint(50, 500) * 10_000
        got = ring.pay_in(victims[0], payee, ts, amount)
        for mule, arrived in ring.forward(
            payee, [got], ring.rnd.sample(onward, 1), (5, 120)
        ).items():
            ring.cash_out(mule, arrived)
        ts = got[0] + ring.rnd.randint(2 * MS_PER_HOUR, 2 * MS_PER_DAY)


def low_and_slow(ring: Ring) -> None:
    """Small victim payments spread over days; mules pass on small sums hours later and
    withdraw small amounts of cash, so that no single transfer stands out."""
    small = 200_000  # 2,000 CNY: every transfer of the ring stays at or below it
    mules = ring.mules(ring.rnd.randint(2, 4))
    spread = max(MS_PER_HOUR, min(3 * MS_PER_DAY, ring.world.end_ms - ring.t0))
    for n, victim in enumerate(ring.victims(ring.rnd.randint(3, 8))):
        ts = ring.t0 + (ring.rnd.randrange(spread) if n else 0)
        got = ring.pay_in(victim, mules[0], ts, ring.rnd.randint(200, 2000) * 100)
        hops = [got]
        for src, dst in itertools.pairwise(mules):
            amount = min(small, ring.cut(hops[-1][1]))
            when = hops[-1][0] + ring.dwell(60, 24 * 60)
            hops.append(ring.move(src, dst, when, amount))
        ring.cash_out(mules[-1], [hops[-1]], limit=small, dwell_min=(120, 36 * 60))
