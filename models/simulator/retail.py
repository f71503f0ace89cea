"""Everyday personal traffic: shopping, family money, rent, bills, cash, big purchases, abroad.

Hard negatives live here on purpose: students on new accounts receiving allowances, family
devices shared by 2-3 accounts, payments to strangers for second-hand goods, elderly people
withdrawing cash or paying large sums to their children or to a car dealer, night owls, and
families sending money abroad.
"""

from __future__ import annotations

import numpy as np

from models.simulator.config import (
    CH_ATM,
    CH_COUNTER,
    CH_MOBILE,
    CH_POS,
    CH_WEB,
    MEMO_ALLOWANCE,
    MEMO_GIFT,
    MEMO_GOODS,
    MEMO_RENT,
    MEMO_TUITION,
    MEMO_UTILITIES,
)
from models.simulator.population import Population
from models.simulator.traffic import (
    Calendar,
    Ledger,
    add_own_sessions,
    daily_events,
    lognormal_fen,
    personal_times,
    pick_channel,
    round_amount,
    times,
)


def _retail_factor(cal: Calendar) -> np.ndarray:
    return np.where(cal.weekday >= 5, 1.2, 1.0)


def _by_age(
    pop: Population, who: np.ndarray, rates: tuple[float, float, float, float]
) -> np.ndarray:
    """Per-account rate for minors, students (18-24), adults, and the elderly (65+)."""
    age = pop.age[who]
    minor, student, adult, elderly = rates
    return np.select([age < 18, age < 25, age < 65], [minor, student, adult], elderly)


def shopping(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """Purchases from merchants: mostly favourite shops, some from the long tail."""
    who = pop.personal
    src, day = daily_events(g, who, _by_age(pop, who, (0.6, 1.2, 1.0, 0.5)), _retail_factor(cal))
    dst = pop.favourites[src, g.integers(0, pop.favourites.shape[1], src.size)]
    wander = g.random(src.size) < 0.35
    dst[wander] = g.choice(pop.merchants, size=int(wander.sum()), p=pop.merchant_p)
    amount = round_amount(g, lognormal_fen(g, src.size, 45, 1.0, 2, 5000), 0.3, 100)
    channel = pick_channel(g, src.size, {CH_MOBILE: 0.7, CH_POS: 0.3})
    elderly_pos = (pop.age[src] >= 65) & (g.random(src.size) < 0.4)
    channel[elderly_pos] = CH_POS
    ts = personal_times(g, cal, pop, src, day)
    add_own_sessions(ledger, g, pop, ts=ts, src=src, dst=dst, amount=amount, channel=channel)


def family_and_friends(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger
) -> None:
    """P2P to household, relatives and friends; some to strangers (second-hand goods)."""
    who = pop.personal
    src, day = daily_events(g, who, _by_age(pop, who, (0.1, 0.3, 0.25, 0.12)), _retail_factor(cal))
    dst = pop.contacts[src, g.integers(0, pop.contacts.shape[1], src.size)]
    stranger = g.random(src.size) < 0.08
    dst[stranger] = g.choice(pop.personal, size=int(stranger.sum()))
    amount = round_amount(g, lognormal_fen(g, src.size, 200, 1.1, 1, 20000), 0.6, 1000)
    red_packet = g.random(src.size) < 0.1
    amount[red_packet] = g.choice([6600, 8800, 18800, 52000, 66600], size=int(red_packet.sum()))
    channel = pick_channel(g, src.size, {CH_MOBILE: 0.9, CH_WEB: 0.1})
    ts = personal_times(g, cal, pop, src, day)
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=ts,
        src=src,
        dst=dst,
        amount=amount,
        channel=channel,
        memo=MEMO_GIFT,
        memo_p=0.05,
    )


def _monthly(cal: Calendar, due_day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(payer row, day) for monthly payments whose due day of month falls in the window."""
    hits = due_day[None, :] == cal.day_of_month[:, None]
    day, row = np.nonzero(hits)
    return row, day


def rent_and_bills(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """Monthly rent to private landlords and utility/telecom bills to big billers."""
    age = pop.age[pop.personal]
    renters = pop.personal[(age >= 22) & (age <= 45) & (g.random(age.size) < 0.22)]
    landlords_pool = pop.personal[(age >= 40) & (age <= 80)]
    landlord = g.choice(landlords_pool, size=renters.size)
    rent = (g.integers(15, 81, renters.size) * 10_000).astype(np.int64)
    row, day = _monthly(cal, g.integers(1, 29, renters.size))
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=personal_times(g, cal, pop, renters[row], day),
        src=renters[row],
        dst=landlord[row],
        amount=rent[row],
        channel=pick_channel(g, row.size, {CH_MOBILE: 0.7, CH_WEB: 0.3}),
        memo=MEMO_RENT,
        memo_p=0.6,
    )

    adults = pop.personal[age >= 22]
    payer = np.repeat(adults, g.integers(1, 3, adults.size))
    biller = g.choice(pop.utilities, size=payer.size)
    bill = lognormal_fen(g, payer.size, 150, 0.6, 20, 2000)
    row, day = _monthly(cal, g.integers(1, 29, payer.size))
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=personal_times(g, cal, pop, payer[row], day),
        src=payer[row],
        dst=biller[row],
        amount=bill[row],
        channel=CH_MOBILE,
        memo=MEMO_UTILITIES,
        memo_p=0.5,
    )


def allowances(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """Parents paying students and minors, weekly or monthly; students often on new accounts."""
    age = pop.age[pop.personal]
    kids = pop.personal[(age < 18) | ((age < 25) & (g.random(age.size) < 0.7))]
    parents = g.choice(pop.personal[(age >= 40) & (age <= 60)], size=kids.size)
    weekly = g.random(kids.size) < 0.4
    amount = np.where(
        weekly, g.integers(2, 9, kids.size) * 10_000, g.integers(10, 31, kids.size) * 10_000
    )
    weekday = g.integers(0, 7, kids.size)
    due = np.where(weekly, 0, g.integers(1, 6, kids.size))
    hits = np.where(
        weekly[None, :],
        weekday[None, :] == cal.weekday[:, None],
        due[None, :] == cal.day_of_month[:, None],
    )
    day, row = np.nonzero(hits)
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=personal_times(g, cal, pop, parents[row], day),
        src=parents[row],
        dst=kids[row],
        amount=amount[row].astype(np.int64),
        channel=CH_MOBILE,
        memo=MEMO_ALLOWANCE,
        memo_p=0.4,
    )


def cash_and_big_tickets(
    g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger
) -> None:
    """ATM withdrawals, large purchases (often to a first-time payee) and large family gifts."""
    who = pop.personal[pop.age[pop.personal] >= 18]
    src, day = daily_events(g, who, _by_age(pop, who, (0, 0.03, 0.04, 0.08)), _retail_factor(cal))
    amount = g.integers(2, 31, src.size) * 10_000
    amount[pop.age[src] >= 65] *= 2
    ts = times(g, cal, day, "retail")
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=ts,
        src=src,
        dst=g.choice(pop.atms, size=src.size),
        amount=amount.astype(np.int64),
        channel=CH_ATM,
    )

    buyers = pop.personal[pop.age[pop.personal] >= 25]
    src, day = daily_events(g, buyers, 0.0008, _retail_factor(cal))
    amount = round_amount(g, lognormal_fen(g, src.size, 60_000, 0.8, 20_000, 400_000), 0.6, 10_000)
    channel = pick_channel(g, src.size, {CH_WEB: 0.4, CH_MOBILE: 0.3, CH_COUNTER: 0.3})
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=times(g, cal, day, "office"),
        src=src,
        dst=g.choice(pop.big_ticket, size=src.size),
        amount=amount,
        channel=channel,
        memo=MEMO_GOODS,
        memo_p=0.3,
    )

    givers = pop.personal[pop.age[pop.personal] >= 60]
    src, day = daily_events(g, givers, 0.001, _retail_factor(cal))
    dst = pop.contacts[src, g.integers(0, pop.contacts.shape[1], src.size)]
    amount = g.integers(10, 101, src.size).astype(np.int64) * 100_000
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=times(g, cal, day, "retail"),
        src=src,
        dst=dst,
        amount=amount,
        channel=pick_channel(g, src.size, {CH_COUNTER: 0.5, CH_MOBILE: 0.5}),
        memo=MEMO_GIFT,
        memo_p=0.3,
    )


def abroad(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """Families paying children and relatives abroad (tuition, living costs), often at night."""
    row, day = daily_events(g, np.arange(pop.foreign_payer.size), 1 / 12, np.ones(cal.days))
    src = pop.foreign_payer[row]
    ts = times(g, cal, day, "retail")
    night = g.random(row.size) < 0.3
    ts[night] = times(g, cal, day[night], "night")
    amount = round_amount(g, lognormal_fen(g, row.size, 12_000, 0.7, 2000, 200_000), 0.7, 10_000)
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=ts,
        src=src,
        dst=pop.foreign_payee[row],
        amount=amount,
        channel=pick_channel(g, row.size, {CH_WEB: 0.5, CH_MOBILE: 0.3, CH_COUNTER: 0.2}),
        memo=MEMO_TUITION,
        memo_p=0.4,
        country=pop.foreign_country[row],
    )


def add_retail(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """All personal background flows."""
    for flow in (
        shopping,
        family_and_friends,
        rent_and_bills,
        allowances,
        cash_and_big_tickets,
        abroad,
    ):
        flow(g, pop, cal, ledger)
