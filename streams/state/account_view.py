"""Read-only snapshot of an account's windows, for the early-warning risk view."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from models.features import WINDOW_1H_MS, WINDOW_7D_MS, WINDOW_24H_MS
from streams.state import keys
from streams.state.base import split_member


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
    devices_7d: int = 0
    accounts_sharing_devices: list[str] = field(default_factory=list)

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
    devices = [m.decode() for m in client.zrangebyscore(k["devices"], as_of - WINDOW_7D_MS, "+inf")]
    sharing: set[str] = set()
    for pseudonym in devices:
        members = client.zrangebyscore(
            keys.entity_accounts_key("device", pseudonym), as_of - WINDOW_7D_MS, "+inf"
        )
        sharing.update(m.decode() for m in members)
    sharing.discard(account_id)
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
        devices_7d=len(devices),
        accounts_sharing_devices=sorted(sharing),
        **_profile_fields(profile),
    )


def _profile_fields(profile: dict[str, str]) -> dict[str, object]:
    return {
        "opened_at_ms": int(profile["oa"]) if "oa" in profile else None,
        "holder_birth_year": int(profile["by"]) if "by" in profile else None,
        "is_business": (profile["ib"] == "1") if "ib" in profile else None,
    }
