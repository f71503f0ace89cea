"""The early-warning view of an account.

Its identifiers and the holder's birth year are personal data: masked for the bank role,
in clear (and audited) for investigators and admins."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from models.account_risk import without_listing_text
from models.features import COLD_START_MS
from models.watchlist import iso_ms
from service.auth import Caller
from service.deps import DisclosureDep, StateDep, require
from service.errors import KEYED
from service.lists import WatchlistViewDep
from service.schemas import (
    AccountFactsOut,
    AccountRiskOut,
    AlertOut,
    ListingOut,
    RiskReasonOut,
    SharedIdentifierOut,
    SuppressedHitOut,
    SuppressionOut,
    SuppressionViewOut,
)
from streams.state.suppressions import SuppressionView

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], responses=KEYED)
Viewer = Annotated[Caller, Depends(require("investigator", "bank"))]


def _suppression(request: Request, account_id: str) -> SuppressionViewOut:
    view: SuppressionView = request.app.state.suppressions
    rules = view.current(force=True).of_account(account_id)
    count, hits = view.store.hits_of(account_id)
    return SuppressionViewOut(
        rules=[
            SuppressionOut(rule=s.rule, until=iso_ms(s.until_ms),
                           dismissed_alert_id=s.alert_id, evidence=dict(s.evidence))
            for s in rules
        ],
        suppressed_hits=count,
        latest_hits=[
            SuppressedHitOut(rules=list(h.rules), transfer_id=h.transfer_id, ts=iso_ms(h.ts_ms))
            for h in hits
        ],
    )  # fmt: skip


def _money(minor: int) -> str:
    return f"{Decimal(minor) / 100:.2f}"


@router.get("/{account_id:path}/risk", summary="Early-warning risk of an account",
            response_model=AccountRiskOut)  # fmt: skip
def account_risk(
    request: Request,
    state: StateDep,
    caller: Viewer,
    disclosure: DisclosureDep,
    lists: WatchlistViewDep,
    account_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> AccountRiskOut:
    """Risk level with reasons, unresolved alerts, the windowed facts behind them, its
    watchlist entry, and (for investigators) the patterns dismissed for it and the hits they
    held back. Shared identifiers and the birth year are masked for the bank role, which gets
    no alert details and no listing's free text."""
    (risk,) = state.account_risks(lists.current(), [account_id])
    snap, alerts, age_days = risk.snapshot, risk.alerts, risk.age_days
    level, reasons = risk.level, risk.reasons
    kind = None if snap.is_business is None else ("business" if snap.is_business else "personal")
    if snap.identifiers or snap.holder_birth_year is not None:
        disclosure.audit(f"account {account_id}: shared identifiers, holder birth year")
    ratio = snap.pass_through_24h
    listing = risk.listing
    bank = caller.role == "bank"  # a listing's free text is not the bank's to see
    if bank:
        reasons = without_listing_text(reasons, listing.source if listing else None)
    # In the first week of observation a counterparty first seen is not known to be new.
    as_of = snap.as_of_ms
    novelty_known = as_of is not None and as_of >= state.observation().since(as_of) + COLD_START_MS
    return AccountRiskOut(
        account_id=account_id,
        listing=None
        if listing is None
        else ListingOut(source=listing.source, reason=None if bank else listing.reason,
                        added_at=iso_ms(listing.added_at_ms),
                        expires_at=iso_ms(listing.expires_at_ms)),
        suppression=None if bank else _suppression(request, account_id),
        risk_level=level,  # type: ignore[arg-type]
        reasons=[RiskReasonOut(code=r.code, text=r.text, level=r.level) for r in reasons],
        # Investigators' material (other customers' accounts, evidence quoting listings): the
        # bank's systems get the level and its reasons, which count the alerts.
        open_alerts=[] if bank else [
            AlertOut.of(a) for a in alerts if a.status in ("open", "escalated")
        ],
        facts=AccountFactsOut(
            as_of=iso_ms(snap.as_of_ms),
            fan_out={
                "transfers_24h": snap.out_count_24h,
                "distinct_payees_1h": snap.distinct_payees_1h,
                "distinct_payees_24h": snap.distinct_payees_24h,
                "first_time_payees_24h": snap.new_payees_24h if novelty_known else None,
            },
            fan_in={
                "transfers_24h": snap.in_count_24h,
                "distinct_payers_1h": snap.distinct_payers_1h,
                "distinct_payers_24h": snap.distinct_payers_24h,
                "first_time_payers_24h": snap.new_payers_24h if novelty_known else None,
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
