"""Read-only snapshot of an account's windows, for the early-warning risk view: the state
library's `account_view` function (the same counts and sums the payer and payee functions
compute), then who else used the account's devices, phones and IPs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.features import WINDOW_7D_MS
from streams.state import keys, spec
from streams.state.functions import Library
from streams.state.pipelines import Pipeline


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
    def accounts_sharing_devices_or_phones(self) -> list[str]:
        """Other accounts that used this account's devices or phone numbers (the "two
        cards" a mule sells with the bank card); not its IPs, which a carrier's or an
        office's network gives to many customers at once."""
        shared = (i for i in self.identifiers if i.kind in ("device", "phone"))
        return sorted({a for i in shared for a in i.other_accounts})

    @property
    def pass_through_24h(self) -> float | None:
        """Money out ÷ money in over 24 hours, or None with no money in."""
        if self.in_amount_24h_minor <= 0:
            return None
        return self.out_amount_24h_minor / self.in_amount_24h_minor


_VIEW = {name: i for i, name in enumerate(spec.ACCOUNT_VIEW.facts)}
_IDENTIFIERS_AT = len(spec.ACCOUNT_VIEW.facts)


def queue_views(pipe: Pipeline, account_ids: Sequence[str], library: Library) -> None:
    """Queue one account-view call per account (one reply each)."""
    name = library.name("account_view")
    for account_id in account_ids:
        k = keys.account_keys(account_id)
        pipe.execute_command("FCALL_RO", name, len(spec.ACCOUNT_VIEW.keys),
                             *(k[role] for role in spec.ACCOUNT_VIEW.keys))  # fmt: skip


def queue_sharing(pipe: Pipeline, views: Sequence[list[Any]]) -> int:
    """Queue, for each view's devices, phones and IPs, who else used them; returns how many."""
    queued = 0
    for view in views:
        as_of = int(view[_VIEW["as_of"]])
        for kind, pseudonym, _ in _identifiers(view):
            # Only account members sort at times: the marker and facts are below this range.
            pipe.zrangebyscore(
                keys.entity_accounts_key(kind, pseudonym), as_of - WINDOW_7D_MS, "+inf"
            )
            queued += 1
    return queued


def snapshots(
    account_ids: Sequence[str], views: Sequence[list[Any]], sharing: Sequence[Any]
) -> list[AccountSnapshot]:
    """The accounts' snapshots from their views and the replies to `queue_sharing`."""
    users = iter(sharing)
    return [_snapshot(a, view, users) for a, view in zip(account_ids, views, strict=True)]


def _identifiers(reply: list[Any]) -> list[tuple[str, str, str]]:
    """(kind, pseudonym, raw value) of each identifier the view found in the last 7 days."""
    cells = [cell.decode(errors="replace") for cell in reply[_IDENTIFIERS_AT:]]
    return [(cells[i], cells[i + 1], cells[i + 2]) for i in range(0, len(cells), 3)]


def _snapshot(account_id: str, reply: list[Any], sharing: Iterator[Any]) -> AccountSnapshot:
    """The snapshot from the account's view reply; its identifiers' users come off `sharing`."""
    as_of = int(reply[_VIEW["as_of"]])
    profile = _profile_fields(
        *(reply[_VIEW[name]].decode(errors="replace")
          for name in ("opened_at", "birth_year", "is_business"))
    )  # fmt: skip
    if as_of < 0:
        return AccountSnapshot(account_id, None, **profile)
    own = (spec.ENTITY_ACCOUNT + account_id).encode()
    identifiers = [
        SharedIdentifier(
            kind, raw, sorted(m[1:].decode(errors="replace") for m in next(sharing) if m != own)
        )
        for kind, _, raw in _identifiers(reply)
    ]
    return AccountSnapshot(
        account_id=account_id,
        as_of_ms=as_of,
        out_count_24h=int(reply[_VIEW["out_n_24h"]]),
        out_amount_24h_minor=int(reply[_VIEW["out_amt_24h"]]),
        distinct_payees_1h=int(reply[_VIEW["payees_1h"]]),
        distinct_payees_24h=int(reply[_VIEW["payees_24h"]]),
        new_payees_24h=int(reply[_VIEW["new_payees_24h"]]),
        in_count_24h=int(reply[_VIEW["in_n_24h"]]),
        in_amount_24h_minor=int(reply[_VIEW["in_amt_24h"]]),
        distinct_payers_1h=int(reply[_VIEW["payers_1h"]]),
        distinct_payers_24h=int(reply[_VIEW["payers_24h"]]),
        new_payers_24h=int(reply[_VIEW["new_payers_24h"]]),
        identifiers=identifiers,
        **profile,
    )


def _profile_fields(opened_at: str, birth_year: str, is_business: str) -> dict[str, Any]:
    return {
        "opened_at_ms": _int_or_none(opened_at),
        "holder_birth_year": _int_or_none(birth_year),
        "is_business": (is_business == "1") if is_business else None,
    }


def _int_or_none(text: str) -> int | None:
    """A stored integer; None when absent or not an integer (a legacy or damaged value is
    unknown, never an error)."""
    try:
        return int(text) if text else None
    except ValueError:
        return None
