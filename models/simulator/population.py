"""The customer base: people, households and businesses, with their stable relationships.

Everything here is drawn once per simulation; background traffic then replays these
relationships (the same employees every payday, the same landlord every month) so that most
legitimate transfers go to known payees, as they do in a real bank.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from models.simulator.accounts import (
    KIND_BUSINESS,
    KIND_PERSONAL,
    NONE,
    AccountTable,
    EntityPool,
)
from models.simulator.config import CN_TZ, COUNTRIES, LEGIT_ABROAD, MS_PER_DAY

CONTACTS = 6  # known personal payees per person (household first, then friends and relatives)
FAVOURITES = 5  # merchants a person returns to
_YEAR_MS = 365 * MS_PER_DAY


@dataclass
class Population:
    """Base accounts (indices 0..n-1 of the table) and the relationships between them."""

    table: AccountTable
    entities: EntityPool
    n: int
    start_ms: int
    age: np.ndarray  # years at the start; -1 for businesses
    personal: np.ndarray
    night_owl: np.ndarray  # bool per account: keeps late hours
    device: np.ndarray  # primary device per account
    pc: np.ndarray  # second (web) device or NONE
    phone: np.ndarray
    home_ip: np.ndarray
    carrier_ips: np.ndarray
    contacts: np.ndarray  # [n, CONTACTS] known personal payees, NONE where absent
    favourites: np.ndarray  # [n, FAVOURITES] merchants
    merchants: np.ndarray
    merchant_p: np.ndarray  # popularity of each merchant (sums to 1)
    utilities: np.ndarray
    big_ticket: np.ndarray  # car dealers, hospitals, schools
    trading: np.ndarray  # busy businesses with many suppliers
    suppliers: np.ndarray  # [len(trading), S] supplier businesses, NONE where absent
    employers: np.ndarray
    payday: np.ndarray  # per employer: day of month 1..28, or 0 for weekly (Fridays)
    employee: np.ndarray  # employee accounts
    employee_of: np.ndarray  # employer of each entry of `employee`
    salary: np.ndarray  # fen, per entry of `employee`
    shared_device_accounts: np.ndarray  # accounts whose primary device is a family device
    foreign_payer: np.ndarray  # accounts with family abroad
    foreign_payee: np.ndarray  # their external beneficiary
    foreign_country: np.ndarray  # index into COUNTRIES
    atms: np.ndarray  # ATM cash endpoints (shared by legitimate and mule withdrawals)


def _ages(g: np.random.Generator, count: int) -> np.ndarray:
    bands = [(12, 17, 0.03), (18, 24, 0.12), (25, 44, 0.35), (45, 64, 0.32), (65, 90, 0.18)]
    band = g.choice(len(bands), size=count, p=[b[2] for b in bands])
    low = np.array([b[0] for b in bands])[band]
    high = np.array([b[1] for b in bands])[band]
    return g.integers(low, high + 1)


def _opened_ms(g: np.random.Generator, age: np.ndarray, start_ms: int) -> np.ndarray:
    adult_years = np.clip(age - 16, 0.2, 20.0)
    years = g.uniform(0.1, 1.0, age.size) * adult_years
    opened = start_ms - (years * _YEAR_MS).astype(np.int64)
    # Legitimate new accounts exist too (students above all): they must not look like mules.
    fresh_p = np.where((age >= 18) & (age <= 24), 0.10, 0.02)
    fresh = g.random(age.size) < fresh_p
    fresh_days = g.uniform(3, 60, age.size)
    return np.where(fresh, start_ms - (fresh_days * MS_PER_DAY).astype(np.int64), opened)


def _households(
    g: np.random.Generator, personal: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    order = g.permutation(personal)
    sizes = g.choice([1, 2, 3, 4], size=order.size, p=[0.35, 0.3, 0.2, 0.15])
    bounds = np.minimum(np.cumsum(sizes), order.size)
    bounds = bounds[: np.searchsorted(bounds, order.size) + 1]
    groups = np.split(order, bounds[:-1])
    return [grp for grp in groups if grp.size], order


def build_population(seed_seq: np.random.SeedSequence, n: int, start_ms: int) -> Population:
    """Draw `n` base accounts and their relationships."""
    g = np.random.default_rng(seed_seq)
    rnd = random.Random(int(g.integers(2**62)))
    entities = EntityPool(rnd)
    table = AccountTable(rnd)

    is_business = np.zeros(n, dtype=bool)
    is_business[g.choice(n, size=max(12, round(0.08 * n)), replace=False)] = True
    age = np.where(is_business, -1, _ages(g, n))
    opened = np.where(
        is_business,
        start_ms - (g.uniform(1, 20, n) * _YEAR_MS).astype(np.int64),
        _opened_ms(g, np.maximum(age, 18), start_ms),
    )
    start_year = datetime.fromtimestamp(start_ms / 1000, CN_TZ).year
    birth = np.where(is_business, NONE, start_year - age - (g.random(n) < 0.2))
    for i in range(n):
        is_firm = bool(is_business[i])
        table.add(
            kind=KIND_BUSINESS if is_firm else KIND_PERSONAL,
            opened_ms=int(opened[i]),
            birth_year=int(birth[i]),
            phone=entities.new_phone(),
            device=entities.new_device(),
            home_ip=entities.new_office_ip() if is_firm else entities.new_home_ip(),
        )
    device = np.array(table.device)
    home_ip = np.array(table.home_ip)
    personal = np.flatnonzero(~is_business)
    business = g.permutation(np.flatnonzero(is_business))

    # Households share a home IP; a quarter of them share one device among 2-3 members.
    households, _ = _households(g, personal)
    contacts = np.full((n, CONTACTS), NONE, dtype=np.int64)
    contacts[personal] = g.choice(personal, size=(personal.size, CONTACTS))
    shared: list[int] = []
    for members in households:
        if members.size < 2:
            continue
        home_ip[members] = home_ip[members[0]]
        for member in members:
            others = members[members != member]
            contacts[member, : others.size] = others
        if g.random() < 0.25:
            sharing = members[: int(g.integers(2, min(3, members.size) + 1))]
            device[sharing] = device[sharing[0]]
            shared.extend(int(a) for a in sharing)
    for i in range(n):
        table.device[i] = int(device[i])
        table.home_ip[i] = int(home_ip[i])

    pc = np.full(n, NONE, dtype=np.int64)
    with_pc = np.flatnonzero(is_business | (g.random(n) < 0.3))
    pc[with_pc] = [entities.new_device() for _ in with_pc]

    # Business roles, carved from one shuffled list.
    n_util = max(2, n // 5000)
    n_big = max(3, n // 1000)
    n_trading = max(2, round(0.12 * business.size))
    utilities, rest = business[:n_util], business[n_util:]
    big_ticket, rest = rest[:n_big], rest[n_big:]
    trading, rest = rest[:n_trading], rest[n_trading:]
    workers = personal[(age[personal] >= 20) & (age[personal] <= 60)]
    workers = workers[g.random(workers.size) < 0.6]
    sizes: list[int] = []
    while sum(sizes) < workers.size and len(sizes) < rest.size // 3:
        sizes.append(int(np.exp(g.uniform(np.log(20), np.log(300)))))
    employers, merchants = rest[: len(sizes)], rest[len(sizes) :]
    employee = g.permutation(workers)[: sum(sizes)]
    employee_of = np.repeat(employers, sizes)[: employee.size]
    base_pay = np.exp(g.normal(np.log(7000), 0.45, employers.size))
    pay_of = dict(zip(employers.tolist(), base_pay.tolist(), strict=True))
    level = np.array([pay_of[e] for e in employee_of.tolist()])
    salary = (level * np.exp(g.normal(0, 0.3, employee.size)) * 100).astype(np.int64)
    payday = g.choice(
        [0, 1, 5, 10, 15, 20, 25, 28],
        size=employers.size,
        p=[0.2, 0.15, 0.1, 0.15, 0.15, 0.1, 0.1, 0.05],
    )

    popularity = 1.0 / np.arange(1, merchants.size + 1) ** 1.1
    merchant_p = popularity / popularity.sum()
    favourites = g.choice(merchants, size=(n, FAVOURITES), p=merchant_p)

    suppliers = np.full((trading.size, 80), NONE, dtype=np.int64)
    for row in range(trading.size):
        count = int(g.integers(10, 81))
        suppliers[row, :count] = g.choice(np.concatenate([business, merchants]), size=count)

    foreign_payer = personal[(g.random(personal.size) < 0.015) & (age[personal] >= 35)]
    foreign_country = g.choice([COUNTRIES.index(c) for c in LEGIT_ABROAD], foreign_payer.size)
    foreign_payee = np.array(
        [table.add_external(f"X{COUNTRIES[c]}") for c in foreign_country.tolist()], dtype=np.int64
    )

    atms = np.array([table.add_external("ATM") for _ in range(max(20, n // 400))])
    return Population(
        table=table,
        entities=entities,
        n=n,
        start_ms=start_ms,
        age=age,
        personal=personal,
        night_owl=g.random(n) < 0.06,
        device=device,
        pc=pc,
        phone=np.array(table.phone[:n]),
        home_ip=home_ip,
        carrier_ips=np.array(entities.carrier_ips(max(32, n // 50))),
        contacts=contacts,
        favourites=favourites,
        merchants=merchants,
        merchant_p=merchant_p,
        utilities=utilities,
        big_ticket=big_ticket,
        trading=trading,
        suppliers=suppliers,
        employers=employers,
        payday=payday,
        employee=employee,
        employee_of=employee_of,
        salary=salary,
        shared_device_accounts=np.array(sorted(shared), dtype=np.int64),
        foreign_payer=foreign_payer,
        foreign_payee=foreign_payee,
        foreign_country=foreign_country,
        atms=atms,
    )
