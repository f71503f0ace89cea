"""Business traffic: payroll fan-out, busy companies paying suppliers, importers paying abroad,
and merchants sweeping their takings to the owner at night.

Each of these looks like a fraud shape on one feature or another (fan-out to many payees within
minutes, large amounts to first-time payees, cross-border money, pass-through at night), which
is exactly why they are here.
"""

from __future__ import annotations

import numpy as np

from models.simulator.accounts import NONE
from models.simulator.config import (
    CH_API,
    CH_WEB,
    COUNTRIES,
    LEGIT_ABROAD,
    MEMO_GOODS,
    MEMO_SALARY,
    MS_PER_HOUR,
    MS_PER_SECOND,
)
from models.simulator.population import Population
from models.simulator.traffic import (
    Calendar,
    Ledger,
    add_own_sessions,
    daily_events,
    lognormal_fen,
    pick_channel,
    round_amount,
    times,
)

_FRIDAY = 4


def _pays_on(payday: np.ndarray, cal: Calendar, day: int) -> np.ndarray:
    """Employers that run payroll on `day`: weekly payers on Fridays; monthly payers on their
    day, brought forward to Friday when it falls on a weekend."""
    weekday, dom = int(cal.weekday[day]), int(cal.day_of_month[day])
    if weekday >= 5:
        return np.zeros(payday.size, dtype=bool)
    due = payday == dom
    if weekday == _FRIDAY:
        due |= (payday == 0) | (payday == dom + 1) | (payday == dom + 2)
    return due


def payroll(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """Salaries: one batch per employer, all employees within minutes, same amounts each time."""
    order = np.argsort(pop.employee_of, kind="stable")
    employee, employer, salary = pop.employee[order], pop.employee_of[order], pop.salary[order]
    weekly = dict(zip(pop.employers.tolist(), (pop.payday == 0).tolist(), strict=True))
    for day in range(cal.days):
        paying = pop.employers[_pays_on(pop.payday, cal, day)]
        for boss in paying.tolist():
            staff = np.flatnonzero(employer == boss)
            start = cal.midnight_ms[day] + g.integers(8 * MS_PER_HOUR, 11 * MS_PER_HOUR)
            # A batch file is executed one payment after the other, seconds apart.
            ts = start + np.cumsum(g.integers(1 * MS_PER_SECOND, 15 * MS_PER_SECOND, staff.size))
            pay = salary[staff] // (4 if weekly[boss] else 1)
            add_own_sessions(
                ledger,
                g,
                pop,
                ts=ts,
                src=np.full(staff.size, boss),
                dst=employee[staff],
                amount=pay,
                channel=CH_API,
                memo=MEMO_SALARY,
                memo_p=0.8,
            )


def suppliers(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """Trading companies paying their many suppliers on weekdays, now and then a new one."""
    office = np.where(cal.weekday >= 5, 0.1, 1.0)
    rate = np.exp(g.normal(np.log(5), 0.6, pop.trading.size))
    row, day = daily_events(g, np.arange(pop.trading.size), rate, office)
    known = (pop.suppliers[row] != NONE).sum(axis=1)
    dst = pop.suppliers[row, (g.random(row.size) * known).astype(np.int64)]
    fresh = g.random(row.size) < 0.04
    dst[fresh] = g.choice(pop.merchants, size=int(fresh.sum()))
    amount = round_amount(g, lognormal_fen(g, row.size, 20_000, 1.2, 500, 2_000_000), 0.6, 10_000)
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=times(g, cal, day, "office"),
        src=pop.trading[row],
        dst=dst,
        amount=amount,
        channel=pick_channel(g, row.size, {CH_API: 0.6, CH_WEB: 0.4}),
        memo=MEMO_GOODS,
        memo_p=0.5,
    )

    importers = pop.trading[g.random(pop.trading.size) < 0.2]
    country = g.choice([COUNTRIES.index(c) for c in LEGIT_ABROAD], size=importers.size)
    foreign = np.array(
        [pop.table.add_external(f"X{COUNTRIES[c]}") for c in country.tolist()], dtype=np.int64
    )
    row, day = daily_events(g, np.arange(importers.size), 0.3, office)
    amount = round_amount(g, lognormal_fen(g, row.size, 80_000, 1.0, 5000, 5_000_000), 0.5, 10_000)
    add_own_sessions(
        ledger,
        g,
        pop,
        ts=times(g, cal, day, "office"),
        src=importers[row],
        dst=foreign[row],
        amount=amount,
        channel=CH_WEB,
        memo=MEMO_GOODS,
        memo_p=0.5,
        country=country[row],
    )


def merchant_sweeps(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """Busy merchants sweep the day's takings to the owner's personal account late at night."""
    busy = pop.merchants[: max(1, pop.merchants.size // 10)]  # the most popular tenth
    owner = g.choice(pop.personal, size=busy.size)
    row, day = daily_events(g, np.arange(busy.size), 0.8, np.ones(cal.days))
    ts = cal.midnight_ms[day] + g.integers(22 * MS_PER_HOUR, 25 * MS_PER_HOUR, row.size)
    amount = lognormal_fen(g, row.size, 5000, 0.8, 300, 200_000)
    add_own_sessions(
        ledger, g, pop, ts=ts, src=busy[row], dst=owner[row], amount=amount, channel=CH_API
    )


def add_business(g: np.random.Generator, pop: Population, cal: Calendar, ledger: Ledger) -> None:
    """All business background flows."""
    for flow in (payroll, suppliers, merchant_sweeps):
        flow(g, pop, cal, ledger)
