"""What every fraud ring is made of: victims, mule accounts run by one operator, money moves
with a short dwell and a commission, and a cash-out at ATMs or abroad.

Typology modules describe only the *shape* of the money flow; this module gives every shape
the same realistic mechanics and labels every account and transfer it creates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from models.simulator.accounts import KIND_PERSONAL, NONE
from models.simulator.config import (
    CH_ATM,
    CH_COUNTER,
    CH_MOBILE,
    CH_WEB,
    CN_TZ,
    COUNTRIES,
    FRAUD_ABROAD,
    MEMO_GOODS,
    MEMO_LOAN,
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MINUTE,
)
from models.simulator.population import Population

Event = tuple[int, int, int, int, int, int, int, int, int, int, int]
Arrival = tuple[int, int]  # (ts_ms, amount in fen) of money landing in an account
_YEAR_MS = 365 * MS_PER_DAY
_ATM_LIMIT = 2_000_000  # 20,000 CNY: a card's daily ATM cash limit

# Who falls for which pretext, and what they pay: (min age, max age, min CNY, max CNY, payments).
PRETEXTS: dict[str, tuple[int, int, int, int, int]] = {
    "investment": (30, 64, 5_000, 120_000, 4),
    "romance": (25, 55, 3_000, 80_000, 3),
    "shopping": (18, 40, 200, 5_000, 2),
    "elderly_pension": (65, 90, 10_000, 150_000, 3),
    "minor_game": (12, 17, 100, 3_000, 5),
}


@dataclass
class RingInfo:
    """What the labels say about one ring."""

    typology: str
    pretext: str | None
    roles: dict[int, str] = field(default_factory=dict)


@dataclass
class FraudWorld:
    """Shared state of all rings of one simulation: events, labels, who was already a victim."""

    pop: Population
    rnd: random.Random
    start_ms: int
    end_ms: int
    events: list[Event] = field(default_factory=list)
    rings: list[RingInfo] = field(default_factory=list)
    used: set[int] = field(default_factory=set)

    @property
    def start_year(self) -> int:
        """Calendar year at the start of the simulation (holder ages are counted from it)."""
        return datetime.fromtimestamp(self.start_ms / 1000, CN_TZ).year

    def victims(self, pretext: str, count: int) -> list[int]:
        """Distinct customers of the right age for `pretext`, none used by another ring;
        when that age group is used up (small runs), any other customer."""
        low, high = PRETEXTS[pretext][:2]
        age = self.pop.age[self.pop.personal]
        chosen: list[int] = []
        for pool in (self.pop.personal[(age >= low) & (age <= high)], self.pop.personal):
            for _ in range(count * 20):
                if len(chosen) == count:
                    return chosen
                candidate = int(pool[self.rnd.randrange(pool.size)]) if pool.size else -1
                if candidate >= 0 and candidate not in self.used:
                    self.used.add(candidate)
                    chosen.append(candidate)
        return chosen


class Ring:
    """One fraud ring: its operator's devices, its mules, and helpers that record its moves."""

    def __init__(self, world: FraudWorld, typology: str, t0: int, pretext: str | None) -> None:
        self.world = world
        self.rnd = world.rnd
        self.t0 = t0
        self.index = len(world.rings)
        self.info = RingInfo(typology, pretext)
        world.rings.append(self.info)
        ents = world.pop.entities
        # GoIP-style operation: one remote operator drives many mules' online banking.
        self.mode = self.rnd.choices(["goip", "shared_ip", "scattered"], [0.5, 0.3, 0.2])[0]
        self.op_devices = [ents.new_device() for _ in range(self.rnd.randint(1, 2))]
        carrier = world.pop.carrier_ips
        self.op_ip = (
            int(carrier[self.rnd.randrange(carrier.size)])
            if self.rnd.random() < 0.3
            else ents.new_home_ip()
        )
        self.cash_mode = self.rnd.choices(["atm", "abroad"], [0.6, 0.4])[0]
        self._beneficiary = NONE
        self._country = COUNTRIES.index(self.rnd.choice(FRAUD_ABROAD))

    # --- accounts -------------------------------------------------------------------------
    def mule(self) -> int:
        """A new mule: mostly a young holder's account opened days to weeks ago."""
        pop, rnd = self.world.pop, self.rnd
        ents = pop.entities
        rented = rnd.random() < 0.15  # an older account rented out by its holder
        if rented:
            age = rnd.randint(22, 40)
        else:
            age = rnd.randint(18, 25) if rnd.random() < 0.75 else rnd.randint(26, 45)
        opened = (
            self.t0 - int(rnd.uniform(1, 6) * _YEAR_MS)
            if rented
            else self.t0 - int(rnd.uniform(2, 45) * MS_PER_DAY)
        )
        index = pop.table.add(
            kind=KIND_PERSONAL,
            opened_ms=opened,
            birth_year=self.world.start_year - age,
            phone=ents.new_phone(),
            device=ents.new_device(),
            home_ip=ents.new_home_ip(),
        )
        self.info.roles[index] = "mule"
        return index

    def mules(self, count: int) -> list[int]:
        """`count` new mules."""
        return [self.mule() for _ in range(count)]

    def victims(self, count: int) -> list[int]:
        """Victims for this ring's pretext."""
        assert self.info.pretext is not None
        chosen = self.world.victims(self.info.pretext, count)
        for v in chosen:
            self.info.roles[v] = "victim"
        return chosen

    # --- timing and amounts ---------------------------------------------------------------
    def dwell(self, low_min: float, high_min: float) -> int:
        """Time money stays in a mule: log-uniform between the bounds (minutes)."""
        return int(np.exp(self.rnd.uniform(np.log(low_min), np.log(high_min))) * MS_PER_MINUTE)

    def awake(self, ts: int) -> int:
        """Victims act while awake (08:00-23:00 local): push night times to the next morning."""
        local_hour = ((ts + 8 * MS_PER_HOUR) // MS_PER_HOUR) % 24
        if 8 <= local_hour < 23:
            return ts
        wait_h = (8 - local_hour) % 24
        return ts + wait_h * MS_PER_HOUR + self.rnd.randrange(2 * MS_PER_HOUR)

    def split(self, total: int, parts: int, unit: int = 100) -> list[int]:
        """Split `total` fen into `parts` uneven parts rounded down to `unit` fen."""
        weights = [self.rnd.uniform(0.5, 1.5) for _ in range(parts)]
        scale = total / sum(weights)
        return [max(unit, int(w * scale) // unit * unit) for w in weights]

    def cut(self, amount: int) -> int:
        """What a mule passes on after keeping its commission (0.5-3 %), in whole yuan."""
        return max(100, int(amount * (1 - self.rnd.uniform(0.005, 0.03))) // 100 * 100)

    # --- money moves ----------------------------------------------------------------------
    def _record(
        self,
        ts: int,
        src: int,
        dst: int,
        amount: int,
        channel: int,
        session: tuple[int, int, int],
        country: int = 0,
        memo: int = NONE,
    ) -> None:
        device, ip, phone = session
        self.world.events.append(
            (ts, src, dst, amount, channel, device, ip, phone, country, memo, self.index)
        )

    def pay_in(self, victim: int, mule: int, ts: int, amount: int) -> Arrival:
        """A victim pays a mule from the victim's own phone, PC or at the counter."""
        pop = self.world.pop
        ts = self.awake(ts)
        elderly = pop.age[victim] >= 65
        channel = self.rnd.choices([CH_MOBILE, CH_WEB, CH_COUNTER], [5, 2, 4 if elderly else 0.3])[
            0
        ]
        if channel == CH_COUNTER:
            session = (NONE, NONE, NONE)
        else:
            web = channel == CH_WEB and pop.pc[victim] != NONE
            device = int(pop.pc[victim]) if web else int(pop.device[victim])
            session = (device, int(pop.home_ip[victim]), int(pop.phone[victim]))
        memo = self.rnd.choice([NONE, NONE, NONE, MEMO_GOODS, MEMO_LOAN])
        self._record(ts, victim, mule, amount, channel, session, memo=memo)
        return ts, amount

    def _mule_session(self, mule: int) -> tuple[int, int, int]:
        table = self.world.pop.table
        phone = table.phone[mule]
        if self.mode == "goip":
            return self.op_devices[mule % len(self.op_devices)], self.op_ip, phone
        if self.mode == "shared_ip":
            return table.device[mule], self.op_ip, phone
        return table.device[mule], table.home_ip[mule], phone

    def move(self, src: int, dst: int, ts: int, amount: int) -> Arrival:
        """A mule pays on, from the operator's session."""
        self._record(ts, src, dst, amount, CH_MOBILE, self._mule_session(src))
        return ts, amount

    def forward(
        self,
        src: int,
        arrivals: list[Arrival],
        dsts: list[int],
        dwell_min: tuple[float, float] = (2, 90),
    ) -> dict[int, list[Arrival]]:
        """Pass everything that arrived at `src` on to `dsts` after a short dwell, split."""
        if not arrivals:
            return {}
        ts = max(t for t, _ in arrivals) + self.dwell(*dwell_min)
        total = self.cut(sum(a for _, a in arrivals))
        out: dict[int, list[Arrival]] = {}
        for dst, part in zip(dsts, self.split(total, len(dsts)), strict=True):
            out.setdefault(dst, []).append(self.move(src, dst, ts, part))
            ts += self.rnd.randint(20_000, 5 * MS_PER_MINUTE)
        return out

    def cash_out(
        self,
        mule: int,
        arrivals: list[Arrival],
        limit: int = _ATM_LIMIT,
        dwell_min: tuple[float, float] = (5, 120),
    ) -> None:
        """Withdraw the money at ATMs (in 100-yuan notes) or wire it abroad."""
        if not arrivals:
            return
        self.info.roles[mule] = "cashout"
        ts = max(t for t, _ in arrivals) + self.dwell(*dwell_min)
        total = self.cut(sum(a for _, a in arrivals))
        if self.cash_mode == "abroad" and limit == _ATM_LIMIT:
            if self._beneficiary == NONE:
                self._beneficiary = self.world.pop.table.add_external(
                    f"X{COUNTRIES[self._country]}"
                )
                self.info.roles[self._beneficiary] = "beneficiary"
            self._record(
                ts,
                mule,
                self._beneficiary,
                total,
                CH_WEB,
                self._mule_session(mule),
                country=self._country,
            )
            return
        atms = self.world.pop.atms
        atm = int(atms[self.rnd.randrange(atms.size)])
        while total >= 10_000:
            cash = min(total, limit) // 10_000 * 10_000
            self._record(ts, mule, atm, cash, CH_ATM, (NONE, NONE, NONE))
            total -= cash
            ts += self.rnd.randint(MS_PER_MINUTE, 10 * MS_PER_MINUTE)
            if self.rnd.random() < 0.3:
                atm = int(atms[self.rnd.randrange(atms.size)])

    def victim_payments(self, victim: int, dst: int, t0: int) -> list[Arrival]:
        """A victim's payments under the ring's pretext (escalating for investment scams)."""
        assert self.info.pretext is not None
        _, _, low, high, most = PRETEXTS[self.info.pretext]
        count = self.rnd.randint(1, most)
        amount = self.rnd.uniform(low, high / (1.5 if count > 1 else 1))
        ts = t0
        paid = []
        for _ in range(count):
            fen = int(min(amount, high)) * 100
            if self.rnd.random() < 0.5:
                fen = max(10_000, fen // 10_000 * 10_000)
            paid.append(self.pay_in(victim, dst, ts, fen))
            ts = paid[-1][0] + self.dwell(10, 36 * 60)
            amount *= self.rnd.uniform(1.0, 2.0) if self.info.pretext == "investment" else 0.9
        return paid
