"""The early-warning view of an account.

Its identifiers and the holder's birth year are personal data: masked for the bank role,
in clear (and audited) for investigators and admins."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from models.watchlist import iso_ms
from service.auth import Caller
from service.deps import DisclosureDep, StateDep, require
from service.lists import WatchlistViewDep
from service.schemas import (
    AccountFactsOut,
    AccountRiskOut,
    AlertOut,
    RiskReasonOut,
    SharedIdentifierOut,
)

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
Viewer = Annotated[Caller, Depends(require("investigator", "bank"))]


def _money(minor: int) -> str:
    return f"{Decimal(minor) / 100:.2f}"


@router.get("/{account_id}/risk", summary="Early-warning risk of an account",
            response_model=AccountRiskOut)  # fmt: skip
def account_risk(
    state: StateDep,
    _: Viewer,
    disclosure: DisclosureDep,
    lists: WatchlistViewDep,
    account_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> AccountRiskOut:
    """Risk level with reasons, unresolved alerts, and the windowed facts behind them.
    Shared identifiers and the birth year are masked for the bank role."""
    (risk,) = state.account_risks(lists.current(), [account_id])
    snap, alerts, age_days = risk.snapshot, risk.alerts, risk.age_days
    level, reasons = risk.level, risk.reasons
    kind = None if snap.is_business is None else ("business" if snap.is_business else "personal")
    if snap.identifiers or snap.holder_birth_year is not None:
        disclosure.audit(f"account {account_id}: shared identifiers, holder birth year")
    ratio = snap.pass_through_24h
    return AccountRiskOut(
        account_id=account_id,
        risk_level=level,  # type: ignore[arg-type]
        reasons=[RiskReasonOut(code=r.code, text=r.text, level=r.level) for r in reasons],
        open_alerts=[AlertOut.of(a) for a in alerts if a.status in ("open", "escalated")],
        facts=AccountFactsOut(
            as_of=iso_ms(snap.as_of_ms),
            fan_out={
                "transfers_24h": snap.out_count_24h,
                "distinct_payees_1h": snap.distinct_payees_1h,
                "distinct_payees_24h": snap.distinct_payees_24h,
                "first_time_payees_24h": snap.new_payees_24h,
            },
            fan_in={
                "transfers_24h": snap.in_count_24h,
                "distinct_payers_1h": snap.distinct_payers_1h,
                "distinct_payers_24h": snap.distinct_payers_24h,
                "first_time_payers_24h": snap.new_payers_24h,
            },
            amount_out_24h=_money(snap.out_amount_24h_minor),
            amount_in_24h=_money(snap.in_amount_24h_minor),
            pass_through_ratio_24h=None if ratio is None else round(ratio, 4),
            account_age_days=None if age_days is None else round(age_days, 1),
            holder_birth_year=disclosure.birth_year(snap.holder_birth_year),
            kind=kind,
            shared_identifiers=[
                SharedIdentifierOut(
                    kind=i.kind,
                    value=disclosure.identifier(i.kind, i.value),
                    other_accounts=i.other_accounts,
                )
                for i in snap.identifiers
            ],
            accounts_sharing_identifiers=snap.accounts_sharing_identifiers,
        ),
    )
