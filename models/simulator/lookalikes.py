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

import numpy as np

from models.simulator.accounts import NONE
from models.simulator.config import (
    CH_ATM,
    CH_COUNTER,
    CH_MOBILE,
    CH_WEB,
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
from models.simulator.moves import (
    Counterparts,
    Moves,
    daily_pairs,
    personal_aged,
    pick,
    time_on,
    yuan,
)
from models.simulator.population import Population
from models.simulator.traffic import Calendar, Ledger


def social_circles(
    g: np.random.Generator,
    pop: Population,
    cal: Calendar,
    ledger: Ledger,
    _counterparts: Counterparts,
) -> None:
    """Friends, classmates and colleagues paying each other small sums: splitting a bill
    (one pays the restaurant, the others pay him back within hours), red packets, chip-ins.
    Every member pays and is paid by several others on a busy day, money comes in and goes out
    again, and in a new installation every one of these payees is a first-time payee."""
    moves = Moves()
    members = g.permutation(personal_aged(pop, 16, 60))
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
            centre = time_on(g, cal, day)
            if g.random() < 0.6:
                # A bill: one member pays a merchant, the others pay him back their share.
                diners = g.choice(circle, size=int(g.integers(3, min(12, circle.size) + 1)),
                                  replace=False)  # fmt: skip
                payer = int(diners[0])
                bill = yuan(g, 120 * diners.size, 0.5, 60, 6000)
                moves.add(centre, payer, pick(g, pop.merchants), bill)
                share = bill // diners.size // 100 * 100
                for friend in diners[1:].tolist():
                    lag = int(g.exponential(50 * MS_PER_MINUTE))
                    moves.add(centre + lag, friend, payer, share + int(g.integers(0, 3)) * 100)
            for _ in range(int(g.poisson(intensity * circle.size))):
                src, dst = g.choice(circle, size=2, replace=False).tolist()
                amount = yuan(g, 200, 1.0, 5, 3000)
                if g.random() < 0.2:  # a red packet: lucky numbers
                    amount = int(g.choice([666, 888, 1888, 5200, 6666, 8888, 20000]))
                spread = int(g.normal(0, 2.5 * MS_PER_HOUR))
                moves.add(centre + spread, src, dst, amount)
    moves.write(g, pop, ledger, MEMO_GIFT, 0.05)


def collections(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: Counterparts
) -> None:
    """A class rep, a trip or group-buy organiser collects the same fee from 8-40 people within
    hours, then pays the total on: to a school or travel agency, to a supplier who banks
    elsewhere, or abroad (a purchasing agent buying for the group)."""
    moves, onward = Moves(), Moves()
    adults = personal_aged(pop, 25, 60)
    for organiser, day in daily_pairs(g, adults, 0.0015, cal):
        fee = yuan(g, 300, 1.0, 30, 3000)
        start = time_on(g, cal, day)
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
                onward.add(ts, organiser, pick(g, pop.big_ticket), total, CH_WEB)
            elif kind < 0.85:
                onward.add(ts, organiser, ctp.outsider(25, 60), total)
            else:
                c = COUNTRIES.index(str(g.choice(LEGIT_ABROAD)))
                abroad = pop.table.add_external(f"X{COUNTRIES[c]}")
                onward.add(ts, organiser, abroad, total, CH_WEB, country=c)
    moves.write(g, pop, ledger, MEMO_SERVICE, 0.3)
    onward.write(g, pop, ledger, MEMO_GOODS, 0.3)


def personal_sellers(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: Counterparts
) -> None:
    """People selling from a personal QR code (second-hand goods, home cooking, tutoring),
    often young and on a recently opened account: many unrelated first-time payers a day,
    the takings swept at night to the seller's account at another bank."""
    moves, sweeps = Moves(), Moves()
    candidates = personal_aged(pop, 18, 50)
    sellers = candidates[g.random(candidates.size) < 0.01]
    for seller in sellers.tolist():
        daily = g.uniform(2, 25)
        price = g.uniform(20, 400)
        sweep_p = g.uniform(0.0, 0.9)
        for day in range(cal.days):
            taken = 0
            for _ in range(int(g.poisson(daily))):
                amount = yuan(g, price, 0.6, 5, 3000)
                moves.add(time_on(g, cal, day), pick(g, pop.personal), seller, amount)
                taken += amount
            if taken and g.random() < sweep_p:
                ts = int(cal.midnight_ms[day]) + int(g.integers(21 * MS_PER_HOUR, 24 * MS_PER_HOUR))
                share = int(taken * g.uniform(0.7, 1.0)) // 100 * 100
                sweeps.add(ts, seller, ctp.own_account_elsewhere(seller), share)
    moves.write(g, pop, ledger, MEMO_GOODS, 0.2)
    sweeps.write(g, pop, ledger, MEMO_DEPOSIT, 0.0)


def crews(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: Counterparts
) -> None:
    """A foreman, a small restaurant owner or a renovation boss is paid a lump sum by the
    client and pays his 5-25 workers within the hour from his personal account: a fan-out to
    first-time payees straight after the money came in. Their wages are what they earned, not
    amounts shaped to stay under a review threshold (that is the launderer's habit)."""
    moves, pay = Moves(), Moves()
    bosses = personal_aged(pop, 30, 60)
    bosses = bosses[g.random(bosses.size) < 0.003]
    payers = np.concatenate([pop.trading, pop.employers]) if pop.trading.size else pop.employers
    for boss in bosses.tolist():
        crew = g.choice(pop.personal, size=int(g.integers(5, 26)), replace=False)
        crew = crew[crew != boss]
        wages = [int(g.integers(20, 91)) * 10_000 for _ in crew]
        for day in np.flatnonzero(g.random(cal.days) < 1 / 14).tolist():
            ts = int(cal.midnight_ms[day]) + int(g.integers(9 * MS_PER_HOUR, 17 * MS_PER_HOUR))
            moves.add(ts, pick(g, payers), boss, int(sum(wages) * g.uniform(1.0, 1.3)), CH_WEB)
            ts += int(np.exp(g.uniform(np.log(3), np.log(120))) * MS_PER_MINUTE)
            for worker, wage in zip(crew.tolist(), wages, strict=True):
                ts += int(g.integers(15_000, 3 * MS_PER_MINUTE))
                pay.add(ts, boss, worker, wage)
    moves.write(g, pop, ledger, MEMO_SERVICE, 0.5)
    pay.write(g, pop, ledger, MEMO_GIFT, 0.0)


def family_pooling(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: Counterparts
) -> None:
    """Relatives send large sums to one member within a day, who pays the total on within
    hours: a hospital or a car dealer, a seller's account at another bank for a down payment,
    or an elderly parent."""
    moves, onward = Moves(), Moves()
    for member, day in daily_pairs(g, personal_aged(pop, 28, 65), 0.0006, cal):
        start = time_on(g, cal, day)
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
                pick(g, pop.big_ticket)
                if kind < 0.5
                else ctp.outsider(30, 70)
                if kind < 0.8
                else pick(g, personal_aged(pop, 65, 90))
            )
            onward.add(ts, member, dst, int(total * g.uniform(0.9, 1.2)) // 10_000 * 10_000,
                       CH_COUNTER if g.random() < 0.3 else CH_MOBILE)  # fmt: skip
    moves.write(g, pop, ledger, MEMO_GIFT, 0.3)
    onward.write(g, pop, ledger, MEMO_GOODS, 0.3)


def new_landlords(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: Counterparts
) -> None:
    """Students and young workers (often on new accounts) pay a landlord they have never paid
    before a deposit and the first rent; landlords letting several rooms get several new
    tenants within days."""
    moves = Moves()
    landlords = [ctp.outsider(35, 80) for _ in range(max(3, pop.n // 1500))]
    landlords += personal_aged(pop, 40, 80)[: max(3, pop.n // 1500)].tolist()
    for tenant, day in daily_pairs(g, personal_aged(pop, 18, 30), 0.0015, cal):
        landlord = landlords[int(g.integers(len(landlords)))]
        rent = int(g.integers(8, 60)) * 10_000
        ts = time_on(g, cal, day)
        if g.random() < 0.5:
            moves.add(ts, tenant, landlord, rent * int(g.integers(2, 4)))
        else:
            moves.add(ts, tenant, landlord, rent)
            moves.add(ts + int(g.integers(MS_PER_MINUTE, 3 * MS_PER_HOUR)), tenant, landlord, rent)
    moves.write(g, pop, ledger, MEMO_RENT, 0.5)


def elderly_tranches(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: Counterparts
) -> None:
    """Elderly customers paying a renovation builder, a care home or a hospital they have
    never paid before, in 2-4 tranches of thousands over a few days."""
    moves = Moves()
    for elder, day in daily_pairs(g, personal_aged(pop, 65, 90), 0.0008, cal):
        payee = ctp.outsider(30, 60, 0.2) if g.random() < 0.6 else pick(g, pop.big_ticket)
        ts = time_on(g, cal, day)
        for _ in range(int(g.integers(2, 5))):
            channel = CH_COUNTER if g.random() < 0.4 else CH_MOBILE
            moves.add(ts, elder, payee, int(g.integers(5, 60)) * 100_000, channel)
            ts += int(g.integers(2 * MS_PER_HOUR, 3 * MS_PER_DAY))
    moves.write(g, pop, ledger, MEMO_SERVICE, 0.4)


def own_money_moves(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: Counterparts
) -> None:
    """People moving their own money: savings to their account at another bank in chunks
    just under a 50,000 transfer limit, and large cash withdrawals (a wedding, a used car)
    taken at the ATM in 20,000 chunks or at the counter."""
    moves = Moves()
    adults = personal_aged(pop, 25, 75)
    for owner, day in daily_pairs(g, adults, 0.0006, cal):
        ts = time_on(g, cal, day)
        own = ctp.own_account_elsewhere(owner)
        for _ in range(int(g.integers(1, 5))):
            moves.add(ts, owner, own, int(g.integers(49_000, 50_000)) * 100, CH_WEB)
            ts += int(g.integers(30_000, 20 * MS_PER_MINUTE))
    for owner, day in daily_pairs(g, adults, 0.0006, cal):
        ts = time_on(g, cal, day)
        atm = pick(g, pop.atms)
        if g.random() < 0.5:
            moves.add(ts, owner, atm, int(g.integers(10, 50)) * 100_000, CH_COUNTER)
            continue
        for _ in range(int(g.integers(1, 4))):
            moves.add(ts, owner, atm, 2_000_000, CH_ATM)
            ts += int(g.integers(MS_PER_MINUTE, 10 * MS_PER_MINUTE))
    moves.write(g, pop, ledger, MEMO_DEPOSIT, 0.1)


def salary_sweeps(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: Counterparts
) -> None:
    """Some employees move most of each salary to their own account at another bank, minutes
    to hours after it arrives: money straight through, from one payer."""
    sweepers = set(pop.employee[g.random(pop.employee.size) < 0.1].tolist())
    if not sweepers:
        return
    columns = ledger.columns()
    moves = Moves()
    paid = np.isin(columns["dst"], list(sweepers)) & np.isin(columns["src"], pop.employers)
    for ts, employee, amount in zip(columns["ts"][paid].tolist(), columns["dst"][paid].tolist(),
                                    columns["amount"][paid].tolist(), strict=True):  # fmt: skip
        delay = int(np.exp(g.uniform(np.log(3), np.log(6 * 60))) * MS_PER_MINUTE)
        share = int(amount * g.uniform(0.5, 1.0)) // 10_000 * 10_000
        moves.add(ts + delay, employee, ctp.own_account_elsewhere(employee), share)
    moves.write(g, pop, ledger, MEMO_DEPOSIT, 0.0)


def loans_and_clubs(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger, ctp: Counterparts
) -> None:
    """Money lent to a friend and paid back days later (a cycle of two), and rotating savings
    clubs: every member pays the same sum to this month's member on one day (a fan-in of
    thousands from many payers into one personal account)."""
    moves = Moves()
    for lender, day in daily_pairs(g, personal_aged(pop, 22, 70), 0.0006, cal):
        friend = int(pop.contacts[lender, int(g.integers(pop.contacts.shape[1]))])
        if friend in (NONE, lender):
            friend = pick(g, pop.personal)
        amount = int(g.integers(2, 51)) * 100_000
        ts = time_on(g, cal, day)
        moves.add(ts, lender, friend, amount)
        back = ts + int(g.uniform(0.5, 6) * MS_PER_DAY)
        moves.add(back, friend, lender, amount + int(g.integers(0, 5)) * 10_000)
    adults = g.permutation(personal_aged(pop, 30, 70))
    clubs = adults[: int(adults.size * 0.02)]
    for club in np.array_split(clubs, max(1, clubs.size // 10)):
        if club.size < 4:
            continue
        stake = int(g.integers(10, 51)) * 10_000
        for day in np.flatnonzero(g.random(cal.days) < 1 / 30).tolist():
            taker = int(club[int(g.integers(club.size))])
            start = time_on(g, cal, day)
            for member in club.tolist():
                if member != taker:
                    moves.add(start + int(g.exponential(3 * MS_PER_HOUR)), member, taker, stake)
    moves.write(g, pop, ledger, MEMO_LOAN, 0.3)


def add_lookalikes(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """Every look-alike flow; run after the everyday flows (salary sweeps follow payroll)."""
    counterparts = Counterparts(pop, g)
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
