"""Read-only snapshot of an account's windows, for the early-warning risk view."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from models.features import WINDOW_1H_MS, WINDOW_7D_MS, WINDOW_24H_MS
from streams.state import keys
from streams.state.base import split_member


@dataclass(frozen=True, slots=True)
class SharedIdentifier:
    """A device, phone or IP the account used in the last 7 days, and who else used it."""

    kind: str
    value: str
    other_accounts: list[str]


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What the state says about one account as of its latest activity (event time)."""

    account_id: str
    as_of_ms: int | None
    out_count_24h: int = 0
    out_amount_24h_minor: int = 0
    distinct_payees_1h: int = 0
    distinct_payees_24h: int = 0
    new_payees_24h: int = 0
    in_count_24h: int = 0
    in_amount_24h_minor: int = 0
    distinct_payers_1h: int = 0
    distinct_payers_24h: int = 0
    new_payers_24h: int = 0
    opened_at_ms: int | None = None
    holder_birth_year: int | None = None
    is_business: bool | None = None
    identifiers: list[SharedIdentifier] = field(default_factory=list)

    @property
    def devices_7d(self) -> int:
        """Distinct devices the account used in the last 7 days."""
        return sum(1 for i in self.identifiers if i.kind == "device")

    @property
    def accounts_sharing_identifiers(self) -> list[str]:
        """Other accounts that used any of this account's devices, phones or IPs."""
        return sorted({a for i in self.identifiers for a in i.other_accounts})

    @property
    def pass_through_24h(self) -> float | None:
        """Money out ÷ money in over 24 hours, or None with no money in."""
        if self.in_amount_24h_minor <= 0:
            return None
        return self.out_amount_24h_minor / self.in_amount_24h_minor


def _window(
    client: redis.Redis, key: str, low: int, high: int
) -> tuple[int, int, set[str], set[str]]:
    rows = client.zrangebyscore(key, low, high, withscores=True)
    count = amount = 0
    parties: set[str] = set()
    recent: set[str] = set()
    for member, score in rows:
        _, party, amt = split_member(member.decode())
        count += 1
        amount += amt
        parties.add(party)
        if score >= high - WINDOW_1H_MS:
            recent.add(party)
    return count, amount, parties, recent


def read_account(client: redis.Redis, account_id: str) -> AccountSnapshot:
    """The account's windowed facts as of its own latest transfer, in few round trips."""
    k = keys.account_keys(account_id)
    pipe = client.pipeline(transaction=False)
    pipe.zrevrange(k["out"], 0, 0, withscores=True)
    pipe.zrevrange(k["in"], 0, 0, withscores=True)
    pipe.hgetall(k["meta"])
    last_out, last_in, meta = pipe.execute()
    latest = [int(rows[0][1]) for rows in (last_out, last_in) if rows]
    profile = {key.decode(): value.decode() for key, value in meta.items()}
    if not latest:
        return AccountSnapshot(account_id, None, **_profile_fields(profile))
    as_of = max(latest)
    low = as_of - WINDOW_24H_MS
    out_n, out_amt, payees, payees_1h = _window(client, k["out"], low, as_of)
    in_n, in_amt, payers, payers_1h = _window(client, k["in"], low, as_of)
    identifiers = _shared_identifiers(client, account_id, as_of - WINDOW_7D_MS)
    return AccountSnapshot(
        account_id=account_id,
        as_of_ms=as_of,
        out_count_24h=out_n,
        out_amount_24h_minor=out_amt,
        distinct_payees_1h=len(payees_1h),
        distinct_payees_24h=len(payees),
        new_payees_24h=int(client.zcount(k["payees"], low, as_of)),
        in_count_24h=in_n,
        in_amount_24h_minor=in_amt,
        distinct_payers_1h=len(payers_1h),
        distinct_payers_24h=len(payers),
        new_payers_24h=int(client.zcount(k["payers"], low, as_of)),
        identifiers=identifiers,
        **_profile_fields(profile),
    )


_KIND_KEYS = (("device", "devices"), ("phone", "phones"), ("ip", "ips"))


def _shared_identifiers(
    client: redis.Redis, account_id: str, since_ms: int
) -> list[SharedIdentifier]:
    k = keys.account_keys(account_id)
    pipe = client.pipeline(transaction=False)
    for _, role in _KIND_KEYS:
        pipe.zrangebyscore(k[role], since_ms, "+inf")
    pipe.hgetall(k["identifiers"])
    *used, raw_values = pipe.execute()
    raw = {key.decode(): value.decode() for key, value in raw_values.items()}
    pipe = client.pipeline(transaction=False)
    found: list[tuple[str, str]] = []
    for (kind, _), pseudonyms in zip(_KIND_KEYS, used, strict=True):
        for pseudonym in (p.decode() for p in pseudonyms):
            found.append((kind, pseudonym))
            pipe.zrangebyscore(keys.entity_accounts_key(kind, pseudonym), since_ms, "+inf")
    shared = []
    for (kind, pseudonym), members in zip(found, pipe.execute(), strict=True):
        others = sorted(m.decode() for m in members if m.decode() != account_id)
        shared.append(SharedIdentifier(kind, raw.get(pseudonym, pseudonym), others))
    return shared


def _profile_fields(profile: dict[str, str]) -> dict[str, object]:
    return {
        "opened_at_ms": int(profile["oa"]) if "oa" in profile else None,
        "holder_birth_year": int(profile["by"]) if "by" in profile else None,
        "is_business": (profile["ib"] == "1") if "ib" in profile else None,
    }
