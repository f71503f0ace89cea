"""Read-only snapshot of an account's windows, for the early-warning risk view."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from models.features import MS_PER_HOUR, WINDOW_1H_MS, WINDOW_7D_MS, WINDOW_24H_MS
from streams.state import keys


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


def _hours(as_of_ms: int) -> list[int]:
    """The 24 hour buckets of the 24-hour amount window ending at `as_of_ms`."""
    hour = as_of_ms // MS_PER_HOUR
    return [hour - i for i in range(24)]


_KIND_KEYS = (("device", "devices"), ("phone", "phones"), ("ip", "ips"))


def read_account(client: redis.Redis, account_id: str) -> AccountSnapshot:
    """The account's windowed facts as of its own latest transfer, in two round trips.

    The counts and sums are read the way the worker's scripts read them (sorted-set counts,
    hour buckets), never by scanning a window, so a busy merchant costs what a quiet one does.
    """
    k = keys.account_keys(account_id)
    pipe = client.pipeline(transaction=False)
    pipe.zrevrange(k["out"], 0, 0, withscores=True)
    pipe.zrevrange(k["in"], 0, 0, withscores=True)
    pipe.hgetall(k["meta"])
    for _, role in _KIND_KEYS:
        pipe.zrange(k[role], 0, -1, withscores=True)
    pipe.hgetall(k["identifiers"])
    last_out, last_in, meta, *used, raw_values = pipe.execute()
    latest = [int(rows[0][1]) for rows in (last_out, last_in) if rows]
    profile = {key.decode(): value.decode() for key, value in meta.items()}
    if not latest:
        return AccountSnapshot(account_id, None, **_profile_fields(profile))
    as_of = max(latest)
    day, hour_ago, week = as_of - WINDOW_24H_MS, as_of - WINDOW_1H_MS, as_of - WINDOW_7D_MS
    hours = _hours(as_of)
    recent = [
        (kind, member.decode())
        for (kind, _), rows in zip(_KIND_KEYS, used, strict=True)
        for member, score in rows
        if score >= week
    ]
    pipe = client.pipeline(transaction=False)
    pipe.zcount(k["out"], day, as_of)
    pipe.hmget(k["out_amount"], hours)
    pipe.zcount(k["payees_last"], hour_ago, "+inf")
    pipe.zcount(k["payees_last"], day, "+inf")
    pipe.zcount(k["payees"], day, as_of)
    pipe.zcount(k["in"], day, as_of)
    pipe.hmget(k["in_amount"], hours)
    pipe.zcount(k["payers_last"], hour_ago, "+inf")
    pipe.zcount(k["payers_last"], day, "+inf")
    pipe.zcount(k["payers"], day, as_of)
    for kind, pseudonym in recent:
        pipe.zrangebyscore(keys.entity_accounts_key(kind, pseudonym), week, "+inf")
    (out_n, out_amt, payees_1h, payees_24h, new_payees, in_n, in_amt, payers_1h, payers_24h,
     new_payers, *sharing) = pipe.execute()  # fmt: skip
    raw = {key.decode(): value.decode() for key, value in raw_values.items()}
    identifiers = [
        SharedIdentifier(
            kind,
            raw.get(pseudonym, pseudonym),
            sorted(m.decode() for m in members if m.decode() != account_id),
        )
        for (kind, pseudonym), members in zip(recent, sharing, strict=True)
    ]
    return AccountSnapshot(
        account_id=account_id,
        as_of_ms=as_of,
        out_count_24h=out_n,
        out_amount_24h_minor=sum(int(v) for v in out_amt if v is not None),
        distinct_payees_1h=payees_1h,
        distinct_payees_24h=payees_24h,
        new_payees_24h=new_payees,
        in_count_24h=in_n,
        in_amount_24h_minor=sum(int(v) for v in in_amt if v is not None),
        distinct_payers_1h=payers_1h,
        distinct_payers_24h=payers_24h,
        new_payers_24h=new_payers,
        identifiers=identifiers,
        **_profile_fields(profile),
    )


def _profile_fields(profile: dict[str, str]) -> dict[str, object]:
    return {
        "opened_at_ms": int(profile["oa"]) if "oa" in profile else None,
        "holder_birth_year": int(profile["by"]) if "by" in profile else None,
        "is_business": (profile["ib"] == "1") if "ib" in profile else None,
    }
