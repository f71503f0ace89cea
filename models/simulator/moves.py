"""Helpers of the look-alike flows: transfers collected one by one, the accounts that only
receive (own accounts at another bank, people outside the customer base), and draws of times,
amounts and people."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from models.simulator.accounts import KIND_PERSONAL, NONE
from models.simulator.config import BANKS, CH_MOBILE, CN_TZ, MS_PER_DAY
from models.simulator.population import Population
from models.simulator.traffic import Calendar, Ledger, add_own_sessions, times

_YEAR_MS = 365 * MS_PER_DAY


@dataclass
class Moves:
    """Legitimate transfers collected one by one, written with the payers' own sessions."""

    ts: list[int] = field(default_factory=list)
    src: list[int] = field(default_factory=list)
    dst: list[int] = field(default_factory=list)
    amount: list[int] = field(default_factory=list)
    channel: list[int] = field(default_factory=list)
    country: list[int] = field(default_factory=list)

    def add(
        self, ts: int, src: int, dst: int, amount: int, channel: int = CH_MOBILE, country: int = 0
    ) -> None:
        """Note one transfer (an amount under 1.00 becomes 1.00)."""
        self.ts.append(int(ts))
        self.src.append(int(src))
        self.dst.append(int(dst))
        self.amount.append(max(100, int(amount)))
        self.channel.append(channel)
        self.country.append(country)

    def write(
        self, g: np.random.Generator, pop: Population, ledger: Ledger, memo: int, memo_p: float
    ) -> None:
        """Append the noted transfers to the ledger, `memo` on a `memo_p` share of them."""
        if not self.ts:
            return
        add_own_sessions(
            ledger,
            g,
            pop,
            ts=np.array(self.ts, dtype=np.int64),
            src=np.array(self.src, dtype=np.int64),
            dst=np.array(self.dst, dtype=np.int64),
            amount=np.array(self.amount, dtype=np.int64),
            channel=np.array(self.channel, dtype=np.int64),
            memo=memo,
            memo_p=memo_p,
            country=np.array(self.country, dtype=np.int64),
        )


@dataclass
class Counterparts:
    """Accounts that only ever receive here: customers' own accounts at another bank, and
    tradespeople and shops outside the simulated customer base (other banks' customers)."""

    pop: Population
    g: np.random.Generator
    _own_elsewhere: dict[int, int] = field(default_factory=dict)

    def own_account_elsewhere(self, owner: int) -> int:
        """The owner's account at another bank (same customer, same holder)."""
        index = self._own_elsewhere.get(owner)
        if index is None:
            table = self.pop.table
            banks = [b for b in BANKS if b != table.bank[owner]]
            index = table.add(
                kind=KIND_PERSONAL,
                opened_ms=self.pop.start_ms - int(self.g.uniform(0.5, 15) * _YEAR_MS),
                birth_year=table.birth_year[owner],
                phone=table.phone[owner],
                device=NONE,
                home_ip=NONE,
                customer=table.customer[owner],
                bank=banks[int(self.g.integers(len(banks)))],
            )
            self._own_elsewhere[owner] = index
        return index

    def outsider(self, min_age: int, max_age: int, fresh_p: float = 0.05) -> int:
        """A personal account of someone outside the base (a landlord, a builder, a seller):
        usually long open, sometimes recently."""
        table = self.pop.table
        age = int(self.g.integers(min_age, max_age + 1))
        years = self.g.uniform(0.2, 1.0) * max(1, age - 18)
        if self.g.random() < fresh_p:
            years = self.g.uniform(3, 60) / 365
        return table.add(
            kind=KIND_PERSONAL,
            opened_ms=self.pop.start_ms - int(years * _YEAR_MS),
            birth_year=datetime.fromtimestamp(self.pop.start_ms / 1000, CN_TZ).year - age,
            phone=self.pop.entities.new_phone(),
            device=NONE,
            home_ip=NONE,
        )


def pick(g: np.random.Generator, pool: np.ndarray) -> int:
    """One account of the pool, uniformly."""
    return int(pool[int(g.integers(pool.size))])


def daily_pairs(
    g: np.random.Generator, who: np.ndarray, rate: float, cal: Calendar
) -> list[tuple[int, int]]:
    """(account, day) pairs of a Poisson process of `rate` per account and day."""
    if who.size == 0:
        return []
    counts = g.poisson(rate, size=(cal.days, who.size))
    day, slot = np.nonzero(counts)
    return list(zip(who[slot].tolist(), day.tolist(), strict=True))


def time_on(g: np.random.Generator, cal: Calendar, day: int, hours: str = "retail") -> int:
    """An event time on `day`, drawn from an hour-of-day profile."""
    return int(times(g, cal, np.array([day]), hours)[0])


def yuan(g: np.random.Generator, median: float, sigma: float, low: float, high: float) -> int:
    """An amount in fen, log-normal around `median` yuan, clipped, in whole yuan."""
    return int(np.clip(median * np.exp(g.normal(0, sigma)), low, high)) * 100


def personal_aged(pop: Population, low: int, high: int) -> np.ndarray:
    """Personal accounts whose holders are `low` to `high` years old."""
    age = pop.age[pop.personal]
    return pop.personal[(age >= low) & (age <= high)]
