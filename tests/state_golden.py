"""Golden tables of the state's edge cases, run against both stores (the in-memory twin in
tests/unit/test_state_golden.py, Redis and Redis Cluster in tests/integration).

Each case is a sequence of transfers applied in order (one batch each, as a worker would),
with the facts some of them must get, written down by hand from the window semantics in
`streams/state/base.py`: not computed by either store, so both are checked against the
definition, not only against each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from models.events import Transfer
from models.features import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from models.taint import TaintMark
from streams.state.base import TransferFacts

# 2026-03-01T12:00:00Z: an hour boundary, mid-day (UTC), so a day boundary is 12 h away.
T0 = 1772366400000
H, D, M = MS_PER_HOUR, MS_PER_DAY, MS_PER_MINUTE


@dataclass(frozen=True)
class Step:
    """One transfer and, optionally, the facts it must get (by role, then fact name)."""

    tid: str
    src: str
    dst: str
    at_ms: int  # offset from T0
    amount_minor: int = 10_000
    device: str | None = None
    phone: str | None = None
    ip: str | None = None
    expect: dict[str, dict[str, int]] = field(default_factory=dict)
    first_delivery: bool | None = None
    # Alert propagation: the step's transfer alerted (its payee is marked after it), and the
    # ids of the marks its payer must hold as its state call read them.
    alerted: bool = False
    marks: tuple[str, ...] | None = None

    def transfer(self) -> Transfer:
        """The transfer this step applies."""
        return Transfer(
            transfer_id=self.tid,
            ts="-",
            ts_ms=T0 + self.at_ms,
            utc_offset_min=0,
            src_account=self.src,
            dst_account=self.dst,
            amount=Decimal(self.amount_minor) / 100,
            amount_minor=self.amount_minor,
            currency="CNY",
            device_id=self.device,
            phone=self.phone,
            ip=self.ip,
        )


@dataclass(frozen=True)
class Case:
    """A named sequence of steps, under a window cap."""

    name: str
    steps: tuple[Step, ...]
    window_cap: int = 1000


def _edge_cases() -> list[Case]:
    # Laid out by hand: one step per line, its expectations below it.
    return [
        Case("an entry exactly 1 h before is in the 1 h window, 1 ms more is not", (
            Step("a1", "A", "B", 0),
            Step("a2", "A", "C", H, expect={"payer": {"out_n_1h": 2, "payees_1h": 2}}),
            Step("a3", "A", "D", 2 * H + 1,
                 expect={"payer": {"out_n_1h": 1, "payees_1h": 1, "out_n_24h": 3}}),
        )),
        Case("an entry exactly 24 h before is in the 24 h windows, 1 ms more is not", (
            Step("b1", "A", "B", 0),
            Step("b2", "A", "C", 24 * H, expect={"payer": {
                "out_n_24h": 2, "payees_24h": 2, "new_payees_24h": 2}}),
            Step("b3", "A", "D", 24 * H + 1, expect={"payer": {
                "out_n_24h": 2, "payees_24h": 2, "new_payees_24h": 2}}),
        )),
        Case("a device, phone or IP seen exactly 7 days before still counts, 1 ms more not", (
            Step("c1", "A", "B", 0, device="dev", ip="192.0.2.1"),
            Step("c2", "E", "B", 0, device="dev", ip="192.0.2.1"),
            Step("c3", "A", "C", 7 * D, device="dev2", expect={
                "payer": {"devices_7d": 2},
                "entities": {"device_accounts_7d": 1}}),
            Step("c4", "F", "C", 7 * D, device="dev", ip="192.0.2.1", expect={
                "entities": {"device_accounts_7d": 3, "ip_accounts_7d": 3}}),
            Step("c5", "G", "C", 7 * D + 1, device="dev", expect={
                "entities": {"device_accounts_7d": 2}}),
        )),
        Case("24-hour amounts sum the clock hour and the 23 before, not the last 86.4 M ms", (
            # 23:59:59.999 of the hour 24 hours before the last: out of the sum though it
            # is less than 24 h old; 00:00 of the hour 23 before: in.
            Step("d1", "A", "B", -1, amount_minor=100),
            Step("d2", "A", "C", 0, amount_minor=1_000),
            Step("d3", "A", "D", 23 * H + 30 * M, amount_minor=10_000, expect={"payer": {
                "out_amt_24h": 11_000, "out_n_24h": 3}}),
            Step("d4", "A", "E", 24 * H, amount_minor=100_000, expect={"payer": {
                "out_amt_24h": 110_000, "out_n_24h": 3}}),
            Step("d5", "X", "A", 24 * H + 5 * M, amount_minor=7, expect={"payee": {
                "in_amt_24h": 7, "out_amt_24h": 110_000}}),
        )),
        Case("a late event lands in its own windows and counts what came before it", (
            Step("e1", "A", "B", 20 * M),
            Step("e2", "A", "C", 10 * M, expect={"payer": {
                # Entries are counted up to the event's own time; the payee paid later
                # still counts as seen within the hour (last seen: no upper bound).
                "out_n_1h": 1, "payees_1h": 2, "first_time_payee": 1}}),
            Step("e3", "A", "B", 5 * M, expect={"payer": {
                # B was first paid after this event: paid here for the first time; the
                # payees first paid after it are not new as of it.
                "first_time_payee": 1, "new_payees_24h": 1, "out_n_1h": 1}}),
            Step("e4", "A", "B", 30 * M, expect={"payer": {
                "first_time_payee": 0, "new_payees_24h": 2, "out_n_1h": 4}}),
        )),
        Case("money in before money out: last inbound time, pass-through sums", (
            Step("f1", "V", "M", 0, amount_minor=50_000),
            Step("f2", "W", "M", 5 * M, amount_minor=30_000),
            Step("f3", "M", "N", 10 * M, amount_minor=70_000, expect={"payer": {
                "last_in_ts": T0 + 5 * M, "in_n_24h": 2, "in_amt_24h": 80_000,
                "payers_24h": 2, "first_seen_ts": T0}}),
            # A late payment out, before the second payment in: the inbound before it.
            Step("f4", "M", "O", 2 * M, amount_minor=1_000, expect={"payer": {
                "last_in_ts": T0, "in_n_24h": 1}}),
        )),
        Case("a redelivered transfer gets its first facts back and changes nothing", (
            Step("g1", "A", "B", 0, device="d", expect={"payer": {"out_n_1h": 1}},
                 first_delivery=True),
            Step("g2", "A", "C", M, device="d", expect={"payer": {"out_n_1h": 2}}),
            Step("g1", "A", "B", 0, device="d", expect={
                "payer": {"out_n_1h": 1, "payees_1h": 1},
                "payee": {"in_n_1h": 1}, "entities": {"device_accounts_7d": 1}},
                first_delivery=False),
            Step("g3", "A", "D", 2 * M, expect={"payer": {"out_n_1h": 3, "payees_1h": 3}}),
        )),
        Case("a payee paid long ago is not new; history past 30 days leaves the prior", (
            Step("h1", "A", "B", 0, amount_minor=500),
            Step("h2", "A", "C", 29 * D, amount_minor=300),
            Step("h3", "A", "B", 40 * D, amount_minor=200, expect={"payer": {
                "first_time_payee": 0, "new_payees_24h": 0, "out_n_30d_prior": 1,
                "out_amt_30d_prior": 300, "payees_24h": 1}}),
        )),
        Case("a payer's fan-in seen from the payee side, first payers and repeat payers", (
            Step("i1", "P1", "Z", 0),
            Step("i2", "P2", "Z", 10 * M),
            Step("i3", "P1", "Z", 20 * M, expect={"payee": {
                "in_n_1h": 3, "payers_1h": 2, "new_payers_24h": 2, "in_n_24h": 3}}),
            Step("i4", "P3", "Z", 2 * H, expect={"payee": {
                "in_n_1h": 1, "payers_1h": 1, "payers_24h": 3, "new_payers_24h": 3}}),
        )),
        Case("the window cap keeps the newest entries of each window", (
            *(Step(f"j{n}", "A", f"B{n}", n * M) for n in range(12)),
            Step("j12", "A", "B0", 12 * M, expect={"payer": {
                # Ten outgoing entries and ten payees kept; B0 was dropped from both.
                "out_n_1h": 11, "payees_1h": 11, "first_time_payee": 1}}),
        ), window_cap=10),
        Case("first seen is the earliest time on either side; profiles are unknown without", (
            Step("k1", "A", "B", 10 * M, expect={
                "payer": {"first_seen_ts": T0 + 10 * M, "opened_at": -1, "is_business": -1},
                "payee": {"first_seen_ts": T0 + 10 * M, "birth_year": -1}}),
            Step("k2", "B", "A", 5 * M, expect={
                "payer": {"first_seen_ts": T0 + 5 * M},
                "payee": {"first_seen_ts": T0 + 5 * M}}),
        )),
        Case("an entry exactly 7 days before is in the 7-day windows, 1 ms more is not", (
            Step("n1", "P1", "Z", 0),
            Step("n2", "P2", "Z", 7 * D, expect={
                "payee": {"in_n_7d": 2, "payers_7d": 2, "new_payers_7d": 2},
                "payer": {"in_n_7d": 0, "out_n_7d": 1}}),
            Step("n3", "P1", "Z", 7 * D + 1, expect={
                "payee": {"in_n_7d": 2, "payers_7d": 2, "new_payers_7d": 1}}),
            Step("n4", "Z", "Q", 7 * D + 2, expect={
                "payer": {"in_n_7d": 2, "payers_7d": 2, "out_n_7d": 1}}),
            Step("n5", "Z", "Q", 14 * D + 1, expect={
                "payer": {"in_n_7d": 1, "payers_7d": 1, "out_n_7d": 2}}),
        )),
        Case("a transfer that alerted marks its payee, once, for what the payee sends on", (
            Step("m1", "V", "M", 0, alerted=True, marks=()),
            Step("m2", "M", "N", 5 * M, marks=("m1",)),
            Step("m1", "V", "M", 0, alerted=True),  # redelivered and marked again: one mark
            Step("m3", "W", "M", 10 * M, alerted=True),
            Step("m4", "M", "O", 20 * M, marks=("m1", "m3")),
            # A redelivery reads the marks as they stand now, not as its first delivery did.
            Step("m2", "M", "N", 5 * M, marks=("m1", "m3"), first_delivery=False),
        )),
        Case("an account keeps marks for 25 h before its newest, the 32 newest at most", (
            Step("o1", "V", "M", 0, alerted=True),
            Step("o2", "V", "M", 25 * H, alerted=True),
            Step("o3", "M", "N", 25 * H, marks=("o1", "o2")),
            Step("o4", "V", "M", 25 * H + 1, alerted=True),
            Step("o5", "M", "N", 25 * H + 2, marks=("o2", "o4")),
            # Older than what is kept: not marked at all.
            Step("o6", "W", "M", 0, alerted=True),
            Step("o7", "M", "N", 25 * H + 3, marks=("o2", "o4")),
            *(Step(f"o{n}", "V", "M", 26 * H + n, alerted=True) for n in range(10, 42)),
            Step("o50", "M", "N", 27 * H,
                 marks=tuple(f"o{n}" for n in range(10, 42))),
        )),
    ]  # fmt: skip


CASES: tuple[Case, ...] = tuple(_edge_cases())


class Store(Protocol):
    """What the golden cases use of a state store."""

    def apply_transfers(self, transfers: Sequence[Transfer]) -> list[TransferFacts]: ...

    def put_marks(self, marks: Sequence[tuple[str, TaintMark]]) -> None: ...


def check(case: Case, store: Store) -> None:
    """Apply the case's steps one batch each; mark the payees of the steps that alerted;
    assert every expectation."""
    for offset, step in enumerate(case.steps):
        transfer = step.transfer()
        (facts,) = store.apply_transfers([transfer])
        if step.alerted:
            mark = TaintMark(step.tid, transfer.ts_ms, step.amount_minor, 0, offset)
            store.put_marks([(step.dst, mark)])
        if step.marks is not None:
            got_marks = {mark.transfer_id for mark in facts.payer_marks}
            assert got_marks == set(step.marks), f"{case.name}: {step.tid} marks"
        for role, expected in step.expect.items():
            got: Any = getattr(facts, role)
            actual = {name: getattr(got, name) for name in expected}
            assert actual == expected, f"{case.name}: {step.tid} {role}"
        if step.first_delivery is not None:
            assert facts.first_delivery is step.first_delivery, f"{case.name}: {step.tid}"
