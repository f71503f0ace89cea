"""The pre-loaded input: N simulated transfers (fraud rings mixed in) and their profiles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

import orjson

from models.events import parse_account
from models.simulator import SimulationConfig, simulate
from service import wiring
from service.settings import Settings
from streams.state.pipelines import AnyRedis

# Fraud patterns mixed in at the live demo stream's share, so every rule and window is busy.
_FRAUD_SHARE = 0.01
_TRANSFERS_PER_ACCOUNT_DAY = 1.25  # a little under what the simulator yields, so one run is enough
_PROFILE_CHUNK = 5_000


@dataclass(frozen=True)
class Dataset:
    """Encoded transfers in delivery order, their keys, and the account profiles."""

    keys: list[bytes]
    values: list[bytes]
    profiles: list[bytes]
    accounts: int  # distinct payers and payees among the transfers
    fraud_transfers: int
    simulated_accounts: int
    simulated_days: int

    @property
    def size(self) -> int:
        """Number of transfers."""
        return len(self.values)

    def records(self) -> Iterable[tuple[bytes, bytes]]:
        """(key, value) pairs to produce, in delivery order."""
        return zip(self.keys, self.values, strict=True)


def prepare(n: int, seed: int) -> Dataset:
    """Simulate enough accounts and days for `n` transfers and keep the first `n` delivered."""
    days = min(7, max(1, n // 20_000))
    accounts = max(200, math.ceil(n / (_TRANSFERS_PER_ACCOUNT_DAY * days)))
    while True:
        config = SimulationConfig(seed=seed, accounts=accounts, days=days, fraud_share=_FRAUD_SHARE)
        simulation = simulate(config)
        if simulation.rank.size >= n:
            break
        accounts = math.ceil(accounts * 1.3)
    transfers = list(islice(simulation.iter_transfers(), n))
    labelled = simulation.labels["transfers"]
    ids = [str(t["transfer_id"]) for t in transfers]
    parties = {str(t["src_account"]) for t in transfers} | {
        str(t["dst_account"]) for t in transfers
    }
    return Dataset(
        keys=[str(t["src_account"]).encode() for t in transfers],
        values=[orjson.dumps(t) for t in transfers],
        profiles=[orjson.dumps(p) for p in simulation.accounts],
        accounts=len(parties),
        fraud_transfers=sum(1 for i in ids if i in labelled),
        simulated_accounts=accounts,
        simulated_days=days,
    )


def load_profiles(settings: Settings, client: AnyRedis, profiles: Sequence[bytes]) -> None:
    """Write account profiles straight into the state store, as the worker would store them.

    Profiles are reference data loaded before the clock starts, so that every batch the
    workers see is transfers only.
    """
    store = wiring.redis_state_store(settings, client)
    for lo in range(0, len(profiles), _PROFILE_CHUNK):
        store.apply_profiles([parse_account(p) for p in profiles[lo : lo + _PROFILE_CHUNK]])
