"""Legitimate look-alikes of every fraud typology: the hard negatives a bank's stream is full of.

Each flow here has the shape of a fraud pattern and none of its intent, so that no shape alone
(many payers, many payees, money passing straight through, first-time payees, large sums to a
stranger, amounts just under a limit, cash, money abroad, accounts at other banks) gives a
label away:

| typology it resembles | legitimate flow |
|---|---|
| low-and-slow, cycle, bipartite | circles of friends and colleagues paying each other small sums |
| fan-in collection, gather-scatter | a class rep / group-buy organiser collecting, then paying on |
| fan-in collection (young account) | a personal seller's QR code, swept to another bank at night |
| fan-out, threshold fan-out | a foreman paid by a client, paying his crew at once |
| scatter-gather, mule chain | a family pooling money for a hospital bill or a down payment |
| fan-in, first-time payee | students paying a new landlord deposit and rent |
| elderly tranches | an elderly customer paying a renovation firm or care home in tranches |
| cash-out, threshold amounts | savings moved to one's own account elsewhere in chunks under a |
| | limit, salaries swept on, large cash withdrawals |
| cycle, fan-in | loans repaid, rotating savings clubs paying each month's pot to one member |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from models.simulator.accounts import KIND_PERSONAL, NONE
from models.simulator.config import (
    BANKS,
    CH_ATM,
    CH_COUNTER,
    CH_MOBILE,
    CH_WEB,
    CN_TZ,
    COUNTRIES,
    LEGIT_ABROAD,
    MEMO_DEPOSIT,
    MEMO_GIFT,
    MEMO_GOODS,
    MEMO_LOAN,
    MEMO_RENT,
    MEMO_SERVICE,
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MINUTE,
)
from models.simulator.population import Population
from models.simulator.traffic import Calendar, Ledger, add_own_sessions, times

_YEAR_MS = 365 * MS_PER_DAY


@dataclass
class _Moves:
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
        self.ts.append(int(ts))
        self.src.append(int(src))
        self.dst.append(int(dst))
        self.amount.append(max(100, int(amount)))
        self.channel.append(channel)
        self.country.append(country)

    def write(
        self, g: np.random.Generator, pop: Population, ledger: Ledger, memo: int, memo_p: float
    ) -> None:
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
class _Counterparts:
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


def _pick(g: np.random.Generator, pool: np.ndarray) -> int:
    return int(pool[int(g.integers(pool.size))])


def _events(g: np.random.Generator, who: np.ndarray, rate: float, cal: Calendar) -> list[tuple]:
    """(account, day) pairs of a Poisson process of `rate` per account and day."""
    if who.size == 0:
        return []
    counts = g.poisson(rate, size=(cal.days, who.size))
    day, slot = np.nonzero(counts)
    return list(zip(who[slot].tolist(), day.tolist(), strict=True))


def _when(g: np.random.Generator, cal: Calendar, day: int, hours: str = "retail") -> int:
    return int(times(g, cal, np.array([day]), hours)[0])


def _yuan(g: np.random.Generator, median: float, sigma: float, low: float, high: float) -> int:
    """An amount in fen, log-normal around `median` yuan, clipped, in whole yuan."""
    return int(np.clip(median * np.exp(g.normal(0, sigma)), low, high)) * 100


def _personal(pop: Population, low: int, high: int) -> np.ndarray:
    age = pop.age[pop.personal]
    return pop.personal[(age >= low) & (age <= high)]


def social_circles(
    g: np.random.Generator,
    pop: Population,
    cal: Calendar,
    ledger: Ledger,
    _counterparts: _Counterparts,
) -> None:
    """Friends, classmates and colleagues paying each other small sums: splitting a bill
    (one pays the restaurant, the others pay him back within hours), red packets, chip-ins.
    Every member pays and is paid by several others on a busy day, money comes in and goes out
    again, and in a new installation every one of these payees is a first-time payee."""
    moves = _Moves()
    members = g.permutation(_personal(pop, 16, 60))
    members = members[: int(members.size * 0.3)]
    sizes = np.clip(np.exp(g.normal(np.log(8), 0.6, members.size)).astype(int), 4, 40)
    bounds = np.cumsum(sizes)
    circles = np.split(members, bounds[bounds < members.size])
    for circle in circles:
        if circle.size < 3:
            continue
        busy_p = g.uniform(0.03, 0.35)
        intensity = g.uniform(0.5, 5.0)  # payments per member on a busy day
        for day in np.flatnonzero(g.random(cal.days) < busy_p).tolist():
            centre = _when(g, cal, day)
            if g.random() < 0.6:
                # A bill: one member pays a merchant, the others pay him back their share.
                diners = g.choice(circle, size=int(g.integers(3, min(12, circle.size) + 1)),
                                  replace=False)  # fmt: skip
                payer = int(diners[0])
                bill = _yuan(g, 120 * diners.size, 0.5, 60, 6000)
                moves.add(centre, payer, _pick(g, pop.merchants), bill)
                share = bill // diners.size // 100 * 100
                for friend in diners[1:].tolist():
                    lag = int(g.exponential(50 * MS_PER_MINUTE))
                    moves.add(centre + lag, friend, payer, share + int(g.integers(0, 3)) * 100)
            for _ in range(int(g.poisson(intensity * circle.size))):
                src, dst = g.choice(circle, size=2, replace=False).tolist()
                amount = _yuan(g, 200, 1.0, 5, 3000)
                if g.random() < 0.2:  # a red packet: lucky numbers
                    amount = int(g.choice([666, 888, 1888, 5200, 6666, 8888, 20000]))
                spread = int(g.normal(0, 2.5 * MS_PER_HOUR))
                moves.add(centre + spread, src, dst, amount)
    moves.write(g, pop, ledger, MEMO_GIFT, 0.05)


def collections(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: _Counterparts
) -> None:
    """A class rep, a trip or group-buy organiser collects the same fee from 8-40 people within
    hours, then pays the total on: to a school or travel agency, to a supplier who banks
    elsewhere, or abroad (a purchasing agent buying for the group)."""
    moves, onward = _Moves(), _Moves()
    adults = _personal(pop, 25, 60)
    for organiser, day in _events(g, adults, 0.0015, cal):
        fee = _yuan(g, 300, 1.0, 30, 3000)
        start = _when(g, cal, day)
        spread = int(g.uniform(1, 30) * MS_PER_HOUR)
        last, collected = start, 0
        for payer in g.choice(pop.personal, size=int(g.integers(8, 41)), replace=False).tolist():
            if payer == organiser:
                continue
            ts = start + int(g.exponential(spread / 3))
            amount = fee if g.random() < 0.8 else fee * int(g.integers(2, 4))
            moves.add(ts, payer, organiser, amount)
            last, collected = max(last, ts), collected + amount
        if g.random() < 0.75:
            total = int(collected * g.uniform(0.85, 1.0)) // 100 * 100
            ts = last + int(np.exp(g.uniform(np.log(10), np.log(8 * 60))) * MS_PER_MINUTE)
            kind = g.random()
            if kind < 0.5:
                onward.add(ts, organiser, _pick(g, pop.big_ticket), total, CH_WEB)
            elif kind < 0.85:
                onward.add(ts, organiser, ctp.outsider(25, 60), total)
            else:
                c = COUNTRIES.index(str(g.choice(LEGIT_ABROAD)))
                abroad = pop.table.add_external(f"X{COUNTRIES[c]}")
                onward.add(ts, organiser, abroad, total, CH_WEB, country=c)
    moves.write(g, pop, ledger, MEMO_SERVICE, 0.3)
    onward.write(g, pop, ledger, MEMO_GOODS, 0.3)


def personal_sellers(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: _Counterparts
) -> None:
    """People selling from a personal QR code (second-hand goods, home cooking, tutoring),
    often young and on a recently opened account: many unrelated first-time payers a day,
    the takings swept at night to the seller's account at another bank."""
    moves, sweeps = _Moves(), _Moves()
    candidates = _personal(pop, 18, 50)
    sellers = candidates[g.random(candidates.size) < 0.01]
    for seller in sellers.tolist():
        daily = g.uniform(2, 25)
        price = g.uniform(20, 400)
        sweep_p = g.uniform(0.0, 0.9)
        for day in range(cal.days):
            taken = 0
            for _ in range(int(g.poisson(daily))):
                amount = _yuan(g, price, 0.6, 5, 3000)
                moves.add(_when(g, cal, day), _pick(g, pop.personal), seller, amount)
                taken += amount
            if taken and g.random() < sweep_p:
                ts = int(cal.midnight_ms[day]) + int(g.integers(21 * MS_PER_HOUR, 24 * MS_PER_HOUR))
                share = int(taken * g.uniform(0.7, 1.0)) // 100 * 100
                sweeps.add(ts, seller, ctp.own_account_elsewhere(seller), share)
    moves.write(g, pop, ledger, MEMO_GOODS, 0.2)
    sweeps.write(g, pop, ledger, MEMO_DEPOSIT, 0.0)


def crews(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: _Counterparts
) -> None:
    """A foreman, a small restaurant owner or a renovation boss is paid a lump sum by the
    client and pays his 5-25 workers within the hour from his personal account: a fan-out to
    first-time payees straight after the money came in. Their wages are what they earned, not
    amounts shaped to stay under a review threshold (that is the launderer's habit)."""
    moves, pay = _Moves(), _Moves()
    bosses = _personal(pop, 30, 60)
    bosses = bosses[g.random(bosses.size) < 0.003]
    payers = np.concatenate([pop.trading, pop.employers]) if pop.trading.size else pop.employers
    for boss in bosses.tolist():
        crew = g.choice(pop.personal, size=int(g.integers(5, 26)), replace=False)
        crew = crew[crew != boss]
        wages = [int(g.integers(20, 91)) * 10_000 for _ in crew]
        for day in np.flatnonzero(g.random(cal.days) < 1 / 14).tolist():
            ts = int(cal.midnight_ms[day]) + int(g.integers(9 * MS_PER_HOUR, 17 * MS_PER_HOUR))
            moves.add(ts, _pick(g, payers), boss, int(sum(wages) * g.uniform(1.0, 1.3)), CH_WEB)
            ts += int(np.exp(g.uniform(np.log(3), np.log(120))) * MS_PER_MINUTE)
            for worker, wage in zip(crew.tolist(), wages, strict=True):
                ts += int(g.integers(15_000, 3 * MS_PER_MINUTE))
                pay.add(ts, boss, worker, wage)
    moves.write(g, pop, ledger, MEMO_SERVICE, 0.5)
    pay.write(g, pop, ledger, MEMO_GIFT, 0.0)


def family_pooling(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: _Counterparts
) -> None:
    """Relatives send large sums to one member within a day, who pays the total on within
    hours: a hospital or a car dealer, a seller's account at another bank for a down payment,
    or an elderly parent."""
    moves, onward = _Moves(), _Moves()
    for member, day in _events(g, _personal(pop, 28, 65), 0.0006, cal):
        start = _when(g, cal, day)
        relatives = [int(c) for c in pop.contacts[member] if c != NONE and c != member]
        relatives += g.choice(pop.personal, size=int(g.integers(0, 3))).tolist()
        total, last = 0, start
        for relative in relatives[: int(g.integers(2, 7))]:
            ts = start + int(g.exponential(4 * MS_PER_HOUR))
            amount = int(g.integers(5, 51)) * 100_000
            moves.add(ts, relative, member, amount)
            total, last = total + amount, max(last, ts)
        if total:
            ts = last + int(np.exp(g.uniform(np.log(20), np.log(8 * 60))) * MS_PER_MINUTE)
            kind = g.random()
            dst = (
                _pick(g, pop.big_ticket)
                if kind < 0.5
                else ctp.outsider(30, 70)
                if kind < 0.8
                else _pick(g, _personal(pop, 65, 90))
            )
            onward.add(ts, member, dst, int(total * g.uniform(0.9, 1.2)) // 10_000 * 10_000,
                       CH_COUNTER if g.random() < 0.3 else CH_MOBILE)  # fmt: skip
    moves.write(g, pop, ledger, MEMO_GIFT, 0.3)
    onward.write(g, pop, ledger, MEMO_GOODS, 0.3)


def new_landlords(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: _Counterparts
) -> None:
    """Students and young workers (often on new accounts) pay a landlord they have never paid
    before a deposit and the first rent; landlords letting several rooms get several new
    tenants within days."""
    moves = _Moves()
    landlords = [ctp.outsider(35, 80) for _ in range(max(3, pop.n // 1500))]
    landlords += _personal(pop, 40, 80)[: max(3, pop.n // 1500)].tolist()
    for tenant, day in _events(g, _personal(pop, 18, 30), 0.0015, cal):
        landlord = landlords[int(g.integers(len(landlords)))]
        rent = int(g.integers(8, 60)) * 10_000
        ts = _when(g, cal, day)
        if g.random() < 0.5:
            moves.add(ts, tenant, landlord, rent * int(g.integers(2, 4)))
        else:
            moves.add(ts, tenant, landlord, rent)
            moves.add(ts + int(g.integers(MS_PER_MINUTE, 3 * MS_PER_HOUR)), tenant, landlord, rent)
    moves.write(g, pop, ledger, MEMO_RENT, 0.5)


def elderly_tranches(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: _Counterparts
) -> None:
    """Elderly customers paying a renovation builder, a care home or a hospital they have
    never paid before, in 2-4 tranches of thousands over a few days."""
    moves = _Moves()
    for elder, day in _events(g, _personal(pop, 65, 90), 0.0008, cal):
        payee = ctp.outsider(30, 60, 0.2) if g.random() < 0.6 else _pick(g, pop.big_ticket)
        ts = _when(g, cal, day)
        for _ in range(int(g.integers(2, 5))):
            channel = CH_COUNTER if g.random() < 0.4 else CH_MOBILE
            moves.add(ts, elder, payee, int(g.integers(5, 60)) * 100_000, channel)
            ts += int(g.integers(2 * MS_PER_HOUR, 3 * MS_PER_DAY))
    moves.write(g, pop, ledger, MEMO_SERVICE, 0.4)


def own_money_moves(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: _Counterparts
) -> None:
    """People moving their own money: savings to their account at another bank in chunks
    just under a 50,000 transfer limit, and large cash withdrawals (a wedding, a used car)
    taken at the ATM in 20,000 chunks or at the counter."""
    moves = _Moves()
    adults = _personal(pop, 25, 75)
    for owner, day in _events(g, adults, 0.0006, cal):
        ts = _when(g, cal, day)
        own = ctp.own_account_elsewhere(owner)
        for _ in range(int(g.integers(1, 5))):
            moves.add(ts, owner, own, int(g.integers(49_000, 50_000)) * 100, CH_WEB)
            ts += int(g.integers(30_000, 20 * MS_PER_MINUTE))
    for owner, day in _events(g, adults, 0.0006, cal):
        ts = _when(g, cal, day)
        atm = _pick(g, pop.atms)
        if g.random() < 0.5:
            moves.add(ts, owner, atm, int(g.integers(10, 50)) * 100_000, CH_COUNTER)
            continue
        for _ in range(int(g.integers(1, 4))):
            moves.add(ts, owner, atm, 2_000_000, CH_ATM)
            ts += int(g.integers(MS_PER_MINUTE, 10 * MS_PER_MINUTE))
    moves.write(g, pop, ledger, MEMO_DEPOSIT, 0.1)


def salary_sweeps(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: _Counterparts
) -> None:
    """Some employees move most of each salary to their own account at another bank, minutes
    to hours after it arrives: money straight through, from one payer."""
    sweepers = set(pop.employee[g.random(pop.employee.size) < 0.1].tolist())
    if not sweepers:
        return
    columns = ledger.columns()
    moves = _Moves()
    paid = np.isin(columns["dst"], list(sweepers)) & np.isin(columns["src"], pop.employers)
    for ts, employee, amount in zip(columns["ts"][paid].tolist(), columns["dst"][paid].tolist(),
                                    columns["amount"][paid].tolist(), strict=True):  # fmt: skip
        delay = int(np.exp(g.uniform(np.log(3), np.log(6 * 60))) * MS_PER_MINUTE)
        share = int(amount * g.uniform(0.5, 1.0)) // 10_000 * 10_000
        moves.add(ts + delay, employee, ctp.own_account_elsewhere(employee), share)
    moves.write(g, pop, ledger, MEMO_DEPOSIT, 0.0)


def loans_and_clubs(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: _Counterparts
) -> None:
    """Money lent to a friend and paid back days later (a cycle of two), and rotating savings
    clubs: every member pays the same sum to this month's member on one day (a fan-in of
    thousands from many payers into one personal account)."""
    moves = _Moves()
    for lender, day in _events(g, _personal(pop, 22, 70), 0.0006, cal):
        friend = int(pop.contacts[lender, int(g.integers(pop.contacts.shape[1]))])
        if friend in (NONE, lender):
            friend = _pick(g, pop.personal)
        amount = int(g.integers(2, 51)) * 100_000
        ts = _when(g, cal, day)
        moves.add(ts, lender, friend, amount)
        back = ts + int(g.uniform(0.5, 6) * MS_PER_DAY)
        moves.add(back, friend, lender, amount + int(g.integers(0, 5)) * 10_000)
    adults = g.permutation(_personal(pop, 30, 70))
    clubs = adults[: int(adults.size * 0.02)]
    for club in np.array_split(clubs, max(1, clubs.size // 10)):
        if club.size < 4:
            continue
        stake = int(g.integers(10, 51)) * 10_000
        for day in np.flatnonzero(g.random(cal.days) < 1 / 30).tolist():
            taker = int(club[int(g.integers(club.size))])
            start = _when(g, cal, day)
            for member in club.tolist():
                if member != taker:
                    moves.add(start + int(g.exponential(3 * MS_PER_HOUR)), member, taker, stake)
    moves.write(g, pop, ledger, MEMO_LOAN, 0.3)


def add_lookalikes(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """Every look-alike flow; run after the everyday flows (salary sweeps follow payroll)."""
    counterparts = _Counterparts(pop, g)
    for flow in (
        social_circles,
        collections,
        personal_sellers,
        crews,
        family_pooling,
        new_landlords,
        elderly_tranches,
        own_money_moves,
        salary_sweeps,
        loans_and_clubs,
    ):
        flow(g, pop, cal, ledger, counterparts)
