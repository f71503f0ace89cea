"""The account table and the synthetic identifiers (account numbers, phones, devices, IPs).

Every identifier is fake by construction: phone numbers use the unallocated "+86 100" prefix,
IPv4 addresses come from private, documentation and shared (carrier-NAT) ranges, and device
ids are random hex. None of them may be printed in logs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from models.simulator.config import BANK_SHARES, BANKS, OWN_BANK
from models.simulator.formatting import format_ts

KIND_PERSONAL, KIND_BUSINESS, KIND_EXTERNAL = 0, 1, 2
NONE = -1  # "no such entity / not known" in every integer column

# Documentation ranges stand in for the few public egress addresses of mobile carriers: many
# unrelated customers share each one, which is what carrier-grade NAT looks like to a bank.
_CARRIER_PREFIXES = ("198.51.100", "203.0.113", "192.0.2")


@dataclass
class EntityPool:
    """Devices, phone numbers and IP addresses, referred to by index from events and accounts."""

    rnd: random.Random
    devices: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    _seen_phones: set[str] = field(default_factory=set)
    _seen_ips: set[str] = field(default_factory=set)

    def new_device(self) -> int:
        """A fresh device fingerprint (collisions of 64 random bits are not a concern)."""
        self.devices.append(f"{self.rnd.getrandbits(64):016x}")
        return len(self.devices) - 1

    def new_phone(self) -> int:
        """A fresh phone number in the unallocated +86 100 range."""
        while True:
            digits = f"{self.rnd.randrange(10**8):08d}"
            phone = f"+86 100 {digits[:4]} {digits[4:]}"
            if phone not in self._seen_phones:
                self._seen_phones.add(phone)
                self.phones.append(phone)
                return len(self.phones) - 1

    def _add_ip(self, address: str) -> int:
        self._seen_ips.add(address)
        self.ips.append(address)
        return len(self.ips) - 1

    def new_home_ip(self) -> int:
        """A fresh residential address from 10.0.0.0/8."""
        while True:
            r = self.rnd.getrandbits(24)
            address = f"10.{r >> 16}.{(r >> 8) & 255}.{(r & 255) or 1}"
            if address not in self._seen_ips:
                return self._add_ip(address)

    def new_office_ip(self) -> int:
        """A fresh office address from 172.16.0.0/12."""
        while True:
            r = self.rnd.getrandbits(20)
            address = f"172.{16 + (r >> 16)}.{(r >> 8) & 255}.{(r & 255) or 1}"
            if address not in self._seen_ips:
                return self._add_ip(address)

    def carrier_ips(self, count: int) -> list[int]:
        """`count` carrier-NAT egress addresses, shared by many subscribers."""
        pool = [f"{p}.{h}" for p in _CARRIER_PREFIXES for h in range(1, 255)]
        self.rnd.shuffle(pool)
        return [self._add_ip(a) for a in pool[: min(count, len(pool))]]


@dataclass
class AccountTable:
    """Parallel per-account columns; an account is its index. Appendable for mules and externals."""

    rnd: random.Random
    ids: list[str] = field(default_factory=list)
    bank: list[str] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    opened_ms: list[int] = field(default_factory=list)
    birth_year: list[int] = field(default_factory=list)
    customer: list[str] = field(default_factory=list)
    phone: list[int] = field(default_factory=list)
    device: list[int] = field(default_factory=list)
    home_ip: list[int] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.ids)

    def _unique_id(self, make: str) -> str:
        while True:
            if make == "card":
                # 19-digit card-style account number with a China UnionPay-like "62" prefix.
                account_id = f"62{self.rnd.randrange(10**17):017d}"
            else:
                account_id = f"{make}{self.rnd.randrange(10**10):010d}"
            if account_id not in self._seen:
                self._seen.add(account_id)
                return account_id

    def add(
        self,
        *,
        kind: int,
        opened_ms: int,
        birth_year: int,
        phone: int,
        device: int,
        home_ip: int,
        customer: str | None = None,
        id_prefix: str = "card",
        bank: str | None = None,
    ) -> int:
        """Append one account and return its index (at a bank drawn by market share unless
        `bank` names one; externals belong to none)."""
        index = len(self.ids)
        self.ids.append(self._unique_id(id_prefix))
        if kind == KIND_EXTERNAL:
            bank = ""
        elif bank is None:
            bank = self.rnd.choices(BANKS, BANK_SHARES)[0]
        self.bank.append(bank)
        self.kind.append(kind)
        self.opened_ms.append(opened_ms)
        self.birth_year.append(birth_year)
        self.customer.append(customer if customer is not None else f"C{index:08d}")
        self.phone.append(phone)
        self.device.append(device)
        self.home_ip.append(home_ip)
        return index

    def add_external(self, prefix: str) -> int:
        """An endpoint outside the bank's customer base: an ATM or a foreign beneficiary."""
        return self.add(
            kind=KIND_EXTERNAL,
            opened_ms=NONE,
            birth_year=NONE,
            phone=NONE,
            device=NONE,
            home_ip=NONE,
            customer="",
            id_prefix=prefix,
        )

    def profile(self, index: int, phones: list[str], shift_ms: int = 0) -> dict[str, object]:
        """The contract §2 profile of a customer account; `shift_ms` moves `opened_at`."""
        doc: dict[str, object] = {
            "account_id": self.ids[index],
            "opened_at": format_ts(self.opened_ms[index] + shift_ms),
            "kind": "business" if self.kind[index] == KIND_BUSINESS else "personal",
            "customer_id": self.customer[index],
        }
        if self.birth_year[index] != NONE:
            doc["holder_birth_year"] = self.birth_year[index]
        if self.phone[index] != NONE:
            doc["phone"] = phones[self.phone[index]]
        return doc

    def profiled_indices(self, coverage: str) -> list[int]:
        """Customer accounts with a profile under `coverage` (`all`, `own-bank`, `none`),
        ordered by account id."""
        if coverage == "none":
            return []
        customers = self.customer_indices()
        if coverage == "own-bank":
            return [i for i in customers if self.bank[i] == OWN_BANK]
        return customers

    def customer_indices(self) -> list[int]:
        """Indices of customer accounts (externals excluded), ordered by account id."""
        return sorted(
            (i for i, k in enumerate(self.kind) if k != KIND_EXTERNAL), key=self.ids.__getitem__
        )
