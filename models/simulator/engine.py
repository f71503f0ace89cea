"""The simulation run: population → background traffic → fraud rings → event order → labels."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from models.simulator import laundering, scams
from models.simulator.accounts import AccountTable, EntityPool
from models.simulator.business import add_business
from models.simulator.config import (
    MS_PER_DAY,
    MS_PER_SECOND,
    OWN_BANK,
    TYPOLOGIES,
    SimulationConfig,
)
from models.simulator.formatting import format_ts, transfer_id
from models.simulator.lookalikes import add_lookalikes
from models.simulator.population import build_population
from models.simulator.retail import add_retail
from models.simulator.rings import PRETEXTS, FraudWorld, Ring
from models.simulator.traffic import COLUMNS, Calendar, Columns, Ledger, change_devices
from models.simulator.writer import iter_transfer_dicts

_ALL_PRETEXTS = tuple(PRETEXTS)
_BIG_MONEY = ("investment", "romance", "elderly_pension")
# typology → (share of rings, builder, pretexts its victims fall for)
MIX: dict[str, tuple[float, Callable[[Ring], None], tuple[str, ...]]] = {
    "mule_chain": (0.24, scams.mule_chain, _ALL_PRETEXTS),
    "threshold_fanout": (0.08, scams.threshold_fanout, _BIG_MONEY),
    "fan_in_collection": (0.08, scams.fan_in_collection, ("shopping", "minor_game", "romance")),
    "cycle": (0.06, laundering.cycle, _ALL_PRETEXTS),
    "scatter_gather": (0.06, laundering.scatter_gather, _ALL_PRETEXTS),
    "gather_scatter": (0.06, laundering.gather_scatter, ("shopping", "investment", "minor_game")),
    "bipartite": (0.06, laundering.bipartite, _ALL_PRETEXTS),
    "stack": (0.06, laundering.stack, _ALL_PRETEXTS),
    "elderly_tranches": (0.15, scams.elderly_tranches, ("elderly_pension",)),
    "low_and_slow": (0.15, scams.low_and_slow, ("shopping", "minor_game", "romance")),
}
assert set(MIX) == set(TYPOLOGIES)


def ring_id(index: int) -> str:
    """Label id of the ring with creation index `index`."""
    return f"ring-{index:05d}"


def add_rings(world: FraudWorld, target_events: int, days: int) -> None:
    """Create rings, starting at random times, until they made `target_events` transfers:
    first one of each typology (in random order), then typologies drawn by their share."""
    span = max(MS_PER_DAY // 2, (days - 1) * MS_PER_DAY)
    first_round = list(MIX)
    world.rnd.shuffle(first_round)
    names, shares = list(MIX), [share for share, _, _ in MIX.values()]
    while len(world.events) < target_events:
        typology = first_round.pop() if first_round else world.rnd.choices(names, shares)[0]
        _, build, pretexts = MIX[typology]
        t0 = world.start_ms + world.rnd.randrange(span)
        build(Ring(world, typology, t0, world.rnd.choice(pretexts)))


def fraud_target(background_events: int, fraud_share: float) -> int:
    """Fraudulent transfers that make `fraud_share` of all, next to the background."""
    return round(background_events * fraud_share / (1.0 - fraud_share))


def fraud_columns(world: FraudWorld) -> Columns:
    """The rings' events as columns."""
    if not world.events:
        return Ledger().columns()
    matrix = np.array(world.events, dtype=np.int64)
    return {name: matrix[:, i] for i, name in enumerate(COLUMNS)}


@dataclass
class Simulation:
    """A finished run: events in delivery order, the account table, and the labels."""

    config: SimulationConfig
    table: AccountTable
    entities: EntityPool
    columns: Columns  # delivery order
    rank: np.ndarray  # event-time rank of each delivered event (its transfer id)
    labels: dict[str, Any]

    def iter_transfers(self) -> Iterator[dict[str, object]]:
        """Transfers in delivery order, as contract §1 dicts, built lazily."""
        return iter_transfer_dicts(
            self.columns, self.rank, self.table, self.entities, self.config.seed
        )

    @cached_property
    def transfers(self) -> list[dict[str, object]]:
        """All transfers in delivery order (built on first use; large runs should stream)."""
        return list(self.iter_transfers())

    @cached_property
    def accounts(self) -> list[dict[str, object]]:
        """Contract §2 profiles of the customer accounts the configured coverage profiles
        (mules included like anyone else), ordered by id."""
        return [
            self.table.profile(i, self.entities.phones)
            for i in self.table.profiled_indices(self.config.profile_coverage)
        ]


def _delivery_order(g: np.random.Generator, ts: np.ndarray) -> np.ndarray:
    # About 1 % of events arrive late: mostly seconds to a couple of minutes, never > 8 minutes.
    late = g.random(ts.size) < 0.01
    delay = np.minimum(g.exponential(60 * MS_PER_SECOND, ts.size).astype(np.int64), 8 * 60_000)
    return np.argsort(ts + np.where(late, delay + MS_PER_SECOND, 0), kind="stable")


def _labels(
    config: SimulationConfig,
    world: FraudWorld,
    cols: Columns,
    rank: np.ndarray,
    table: AccountTable,
) -> dict[str, Any]:
    fraud = np.flatnonzero(cols["ring"] >= 0)
    fraud = fraud[np.argsort(rank[fraud], kind="stable")]
    transfers: dict[str, dict[str, str]] = {}
    first_ts: dict[int, int] = {}
    per_typology: dict[str, int] = dict.fromkeys(TYPOLOGIES, 0)
    for row in fraud.tolist():
        index = int(cols["ring"][row])
        info = world.rings[index]
        transfers[transfer_id(config.seed, int(rank[row]))] = {
            "ring": ring_id(index),
            "typology": info.typology,
        }
        first_ts.setdefault(index, int(cols["ts"][row]))
        per_typology[info.typology] += 1
    rings: dict[str, dict[str, object]] = {}
    accounts: dict[str, dict[str, str]] = {}
    ring_totals: dict[str, int] = dict.fromkeys(TYPOLOGIES, 0)
    for index in sorted(first_ts):
        info = world.rings[index]
        ids = sorted(table.ids[a] for a in info.roles)
        rings[ring_id(index)] = {
            "typology": info.typology,
            "pretext": info.pretext,
            "first_ts": format_ts(first_ts[index]),
            "accounts": ids,
        }
        ring_totals[info.typology] += 1
        for account, role in info.roles.items():
            accounts[table.ids[account]] = {"ring": ring_id(index), "role": role}
    return {
        "seed": config.seed,
        "own_bank": OWN_BANK,
        "profile_coverage": config.profile_coverage,
        "typologies": {
            name: {"description": text, "rings": ring_totals[name], "transfers": per_typology[name]}
            for name, text in TYPOLOGIES.items()
        },
        "transfers": transfers,
        "accounts": dict(sorted(accounts.items())),
        "rings": rings,
    }


def simulate(config: SimulationConfig) -> Simulation:
    """Run the whole simulation for `config`; the result depends on nothing but `config`."""
    seeds = np.random.SeedSequence(config.seed).spawn(4)
    start, end = config.start_ms, config.end_ms
    pop = build_population(seeds[0], config.accounts, start)
    cal = Calendar.of(start, config.days)
    g = np.random.default_rng(seeds[1])
    ledger = Ledger()
    add_retail(g, pop, cal, ledger)
    add_business(g, pop, cal, ledger)
    add_lookalikes(g, pop, cal, ledger)
    background = ledger.columns()
    change_devices(g, pop, background, start, end)

    world = FraudWorld(pop, random.Random(int(seeds[2].generate_state(1)[0])), start, end)
    in_window = int(((background["ts"] >= start) & (background["ts"] < end)).sum())
    add_rings(world, fraud_target(in_window, config.fraud_share), config.days)
    fraud = fraud_columns(world)

    cols = {name: np.concatenate([background[name], fraud[name]]) for name in COLUMNS}
    del background, fraud  # large runs: keep at most two copies of the columns alive
    inside = (cols["ts"] >= start) & (cols["ts"] < end)
    cols = {name: col[inside] for name, col in cols.items()}
    by_time = np.argsort(cols["ts"], kind="stable")
    rank = np.empty(by_time.size, dtype=np.int64)
    rank[by_time] = np.arange(by_time.size)
    order = _delivery_order(np.random.default_rng(seeds[3]), cols["ts"])
    delivered = {name: col[order] for name, col in cols.items()}
    labels = _labels(config, world, cols, rank, pop.table)
    return Simulation(config, pop.table, pop.entities, delivered, rank[order], labels)
