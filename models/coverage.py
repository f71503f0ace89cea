"""Profile coverage: which accounts of a dataset have a profile, as a deployment would see it.

A bank has profiles for its own customers only (often 10-40 % of the accounts in its stream);
an anti-fraud centre that aggregates several banks may have none; an evaluation over every
profile shows the best case. `select_profiles` cuts a dataset's profiles down to one of these
views, so one labelled directory is evaluated (and trained on) in each.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from models.jsonl import json_objects

PROFILE_COVERAGES: tuple[str, ...] = ("all", "own-bank", "none")


def parse_coverages(text: str) -> list[str]:
    """`all,own-bank,none` → the listed conditions, in order; raise `ValueError` on others."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PROFILE_COVERAGES]
    if unknown or not names:
        raise ValueError(
            f"unknown profile coverage {', '.join(unknown) or repr(text)}; "
            f"use one or more of {','.join(PROFILE_COVERAGES)}"
        )
    return list(dict.fromkeys(names))


def account_banks(transfers: Iterable[bytes]) -> dict[str, str]:
    """Every account the transfers name, with its bank as they name it (`src_bank` of a
    payer, `dst_bank` of a payee; the first one given), "" where none is given; lines that are
    not JSON objects are skipped."""
    banks: dict[str, str] = {}
    for doc in json_objects(transfers):
        for account, bank in (("src_account", "src_bank"), ("dst_account", "dst_bank")):
            name, code = doc.get(account), doc.get(bank)
            if isinstance(name, str):
                if isinstance(code, str) and code:
                    if not banks.get(name):
                        banks[name] = code
                else:
                    banks.setdefault(name, "")
    return banks


def largest_bank(banks: dict[str, str]) -> str | None:
    """The bank holding the most accounts (ties: the first name in sort order)."""
    counts = Counter(bank for bank in banks.values() if bank)
    if not counts:
        return None
    return min(counts, key=lambda bank: (-counts[bank], bank))


def _account_of(line: bytes) -> str | None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    account = doc.get("account_id") if isinstance(doc, dict) else None
    return account if isinstance(account, str) else None


@dataclass(frozen=True)
class CoverageView:
    """One coverage condition applied to a dataset's profiles."""

    coverage: str
    profiles: list[bytes]
    own_bank: str | None
    profiled_accounts: int
    accounts: int  # accounts the transfers name

    def describe(self) -> str:
        """`own-bank (ICBC): profiles for 1,241 of the 5,131 accounts in the transfers`."""
        bank = ""
        if self.coverage == "own-bank":
            # Without src_bank / dst_bank (or labels naming one) there is no bank to keep.
            bank = f" ({self.own_bank or 'no bank named in the transfers or labels'})"
        return (
            f"{self.coverage}{bank}: profiles for {self.profiled_accounts:,} of the "
            f"{self.accounts:,} accounts in the transfers"
        )


def select_profiles(
    profiles: Sequence[bytes], coverage: str, banks: dict[str, str], own_bank: str | None = None
) -> CoverageView:
    """The profile lines a deployment with `coverage` would have: every one (`all`), those
    of `own_bank`'s customers (default: the bank with the most accounts), or none.
    `banks` is `account_banks` of the transfers."""
    if coverage == "none":
        return CoverageView(coverage, [], own_bank, 0, len(banks))
    if coverage == "all":
        kept = list(profiles)
    elif coverage == "own-bank":
        own_bank = own_bank or largest_bank(banks)
        kept = [line for line in profiles if banks.get(_account_of(line) or "") == own_bank]
    else:
        raise ValueError(f"unknown profile coverage {coverage!r}")
    profiled = {_account_of(line) for line in kept} & banks.keys()
    return CoverageView(coverage, kept, own_bank, len(profiled), len(banks))


def random_profiles(
    profiles: Sequence[bytes], banks: dict[str, str], keep_share: float, seed: int
) -> CoverageView:
    """Each account's profile kept with probability `keep_share`, whole accounts at a time and
    independently of anything else about them: a view in which a profile's absence is chance,
    never a sign (for training)."""
    rng = random.Random(seed)
    kept: dict[str, bool] = {}
    lines = []
    for line in profiles:
        account = _account_of(line) or ""
        if account not in kept:
            kept[account] = rng.random() < keep_share
        if kept[account]:
            lines.append(line)
    profiled = {account for account, keep in kept.items() if keep} & banks.keys()
    return CoverageView(f"random {keep_share:.0%}", lines, None, len(profiled), len(banks))
