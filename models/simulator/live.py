"""An endless live stream for `fraudwatch demo` and the load test.

Background traffic is a pre-generated template of a couple of days, replayed in order and
cycled; fraud rings are pre-generated too, each compressed to well under a minute of wall
time, and started at regular intervals: the first one of every typology within the first half
minute, later ones often enough to keep fraud near 1 % of the stream. Every event is stamped
with the wall time `now()` returns at the moment it is yielded; the caller sets the pace.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np

from models.simulator.accounts import AccountTable, EntityPool
from models.simulator.business import add_business
from models.simulator.config import CN_TZ, DEFAULT_START, MS_PER_DAY, TYPOLOGIES
from models.simulator.engine import MIX
from models.simulator.formatting import format_ts
from models.simulator.lookalikes import add_lookalikes
from models.simulator.population import build_population
from models.simulator.retail import add_retail
from models.simulator.rings import FraudWorld, Ring
from models.simulator.traffic import COLUMNS, Calendar, Columns, Ledger, change_devices
from models.simulator.writer import transfer_dict

_TEMPLATE_DAYS = 2
_ROUNDS = 5  # pre-generated rings per typology; the schedule cycles through them
_RING_SPAN_MS = 40_000  # a ring's whole story, compressed into at most this much wall time
_FIRST_GAP_S = 3.0  # gap between ring starts while the first of each typology is shown
_FRAUD_SHARE = 0.01  # afterwards, ring starts are spaced to keep fraud near this share
_CHUNK = 16_384

Row = tuple[int, ...]


@dataclass(frozen=True)
class _LiveWorld:
    table: AccountTable
    entities: EntityPool
    reference_ms: int  # simulated "now" that profiles and rings were drawn around
    background: Columns  # event-time order
    rings: list[list[tuple[int, Row]]]  # per ring: (offset ms from its start, event row)
    typologies: list[str]  # per ring

    @property
    def mean_ring_events(self) -> float:
        """Average number of transfers per ring."""
        return sum(len(r) for r in self.rings) / max(1, len(self.rings))


def _compress(rows: list[Row]) -> list[tuple[int, Row]]:
    rows = sorted(rows)
    first = rows[0][0]
    span = max(1, rows[-1][0] - first)
    factor = max(1.0, span / _RING_SPAN_MS)
    return [(int((row[0] - first) / factor), row) for row in rows]


@lru_cache(maxsize=2)
def _live_world(seed: int, accounts: int) -> _LiveWorld:
    seeds = np.random.SeedSequence([seed, 0x11FE]).spawn(3)
    start = int(DEFAULT_START.timestamp() * 1000)
    pop = build_population(seeds[0], accounts, start)
    g = np.random.default_rng(seeds[1])
    ledger = Ledger()
    cal = Calendar.of(start, _TEMPLATE_DAYS)
    add_retail(g, pop, cal, ledger)
    add_business(g, pop, cal, ledger)
    add_lookalikes(g, pop, cal, ledger)
    background = ledger.columns()
    change_devices(g, pop, background, start, start + _TEMPLATE_DAYS * MS_PER_DAY)
    order = np.argsort(background["ts"], kind="stable")
    background = {name: col[order] for name, col in background.items()}

    rnd = random.Random(int(seeds[2].generate_state(1)[0]))
    world = FraudWorld(pop, rnd, start, start + _TEMPLATE_DAYS * MS_PER_DAY)
    for _ in range(_ROUNDS):
        typologies = list(TYPOLOGIES)
        rnd.shuffle(typologies)
        for typology in typologies:
            _, build, pretexts = MIX[typology]
            build(Ring(world, typology, start, rnd.choice(pretexts)))
    by_ring: list[list[Row]] = [[] for _ in world.rings]
    for event in world.events:
        by_ring[event[-1]].append(event)
    kept = [i for i, rows in enumerate(by_ring) if rows]
    rings = [_compress(by_ring[i]) for i in kept]
    typologies = [world.rings[i].typology for i in kept]
    return _LiveWorld(pop.table, pop.entities, start, background, rings, typologies)


def _wall_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def live_profiles(
    seed: int, accounts: int, now: Callable[[], datetime] | None = None
) -> list[dict[str, object]]:
    """Profiles (contract §2) of every account `live_stream(seed, accounts, ...)` uses, with
    account ages counted back from `now()` (the current time by default)."""
    world = _live_world(seed, accounts)
    current = now() if now is not None else datetime.now(CN_TZ)
    shift = _wall_ms(current) - world.reference_ms
    return [
        world.table.profile(i, world.entities.phones, shift) for i in world.table.customer_indices()
    ]


def _background_rows(background: Columns) -> Iterator[Row]:
    size = background["ts"].size
    while True:
        for lo in range(0, size, _CHUNK):
            chunk = [background[name][lo : lo + _CHUNK].tolist() for name in COLUMNS]
            yield from zip(*chunk, strict=True)


def live_stream(
    seed: int, accounts: int, rate_per_s: float, now: Callable[[], datetime]
) -> Iterator[dict[str, object]]:
    """Endless transfers (contract §1 dicts) stamped with `now()`; the caller paces them.

    `rate_per_s` is the pace the caller intends; it only spaces the fraud rings so that they
    stay a realistic share of the stream once the first ring of every typology has run.
    """
    world = _live_world(seed, accounts)
    began = _wall_ms(now())
    prefix = f"lv{seed}-{began:x}"
    steady_gap_s = max(
        _FIRST_GAP_S, world.mean_ring_events / (_FRAUD_SHARE * max(rate_per_s, 1e-3))
    )
    due: list[tuple[int, int, Row]] = []  # (wall ms since start, sequence, row)
    next_ring_s, ring_count, sequence = 0.0, 0, 0
    background = _background_rows(world.background)
    last_ms, stamp = -1, ""
    while True:
        wall_ms = _wall_ms(now())
        if wall_ms != last_ms:  # formatting is the costly part; many events share a ms
            last_ms, stamp = wall_ms, format_ts(wall_ms)
        elapsed = wall_ms - began
        while world.rings and elapsed >= next_ring_s * 1000:
            for offset, row in world.rings[ring_count % len(world.rings)]:
                heapq.heappush(due, (int(next_ring_s * 1000) + offset, sequence, row))
                sequence += 1
            ring_count += 1
            next_ring_s += _FIRST_GAP_S if ring_count < len(TYPOLOGIES) else steady_gap_s
        row = heapq.heappop(due)[2] if due and due[0][0] <= elapsed else next(background)
        sequence += 1
        yield transfer_dict(row, f"{prefix}-{sequence}", stamp, world.table, world.entities)
