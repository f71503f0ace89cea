"""Request and response models of screening, follow-the-money and watchlists (OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.currency import SCORING_CURRENCY
from service.schemas import ModelOut, ReasonOut, RiskReasonOut

RiskLevel = Literal["none", "low", "medium", "high", "critical"]
WatchlistKind = Literal["account", "device", "phone", "ip"]


class ScreenRequest(BaseModel):
    """A prospective transfer, in the shape of a `transfers` event (CONTRACT.md §1).

    Validated by the contract's own parser: a bad field is a 422 naming it."""

    transfer_id: str = Field(examples=["pay-20260302-000123"], pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    ts: str = Field(examples=["2026-03-02T09:41:07.120+08:00"])
    src_account: str = Field(examples=["6222020000000001"], min_length=1, max_length=64)
    dst_account: str = Field(examples=["6222020000000777"], min_length=1, max_length=64)
    amount: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?$")] | float = Field(
        examples=["49900.00"],
        description="a decimal string like \"49900.00\" (recommended) or a JSON number, read "
        "exactly from its text (never as a float); > 0, at most 2 decimal places, < 10^12",
    )
    currency: str = Field(examples=["CNY"], pattern=r"^[A-Z]{3}$")
    channel: Literal["mobile", "web", "atm", "counter", "pos", "api", "other"] | None = Field(
        "other", description="absent or null: other"
    )
    src_bank: str | None = None
    dst_bank: str | None = None
    device_id: str | None = Field(None, examples=["d-7f3a9c"], min_length=1, max_length=256)
    ip: str | None = Field(None, examples=["203.0.113.9"], description="IPv4 or IPv6")
    phone: str | None = Field(None, examples=["+8613800138000"], min_length=1, max_length=32)
    src_country: str | None = Field(None, examples=["CN"], pattern=r"^[A-Z]{2}$")
    dst_country: str | None = Field(None, examples=["CN"], pattern=r"^[A-Z]{2}$")
    memo: str | None = Field(None, max_length=140)


class PayeeRiskOut(BaseModel):
    """The payee's early-warning risk, as in `GET /v1/accounts/{id}/risk`."""

    account_id: str = Field(examples=["6222020000000777"])
    risk_level: RiskLevel = Field(examples=["high"])
    reasons: list[RiskReasonOut]


class WarningOut(BaseModel):
    """A message the bank shows its customer before the payment goes, chosen by what the
    transfer looks like (`rules/policy.yaml`)."""

    code: str = Field(examples=["safe_account"])
    text: str = Field(
        examples=["No police officer, bank or official will ever ask you to move money to a "
                  '"safe account". If a caller asked you to make this payment, hang up and '
                  "call 96110."]
    )  # fmt: skip


class ScreenOut(BaseModel):
    """What to do with this transfer, would it alert if made now, and how risky is its
    payee? Nothing is stored."""

    transfer_id: str = Field(examples=["pay-20260302-000123"])
    decision: Literal["allow", "warn", "hold", "block"] = Field(
        description="What the bank should do, by the screening policy (`rules/policy.yaml`): "
        "`allow`; `warn` (show `warning`, the customer may go on); `hold` (keep the payment "
        "until the customer is reached); `block`. A payee on the account watchlist is blocked; "
        "customers aged 65 or over or under 18 by their profile are warned and held sooner.",
        examples=["hold"],
    )
    warning: WarningOut | None = Field(
        description="The message for the customer; null when the decision is `allow`"
    )
    would_alert: bool = Field(examples=[True])
    score: float = Field(ge=0, le=1, examples=[0.84])
    severity: Literal["low", "medium", "high", "critical"] | None = Field(examples=["high"])
    reasons: list[ReasonOut]
    model: ModelOut | None
    payee_risk: PayeeRiskOut
    already_processed: bool = Field(
        description="True when this transfer_id was already scored: the verdict is on the "
        "facts stored then",
        examples=[False],
    )


class TraceTransferOut(BaseModel):
    """One transfer in a flow graph."""

    model_config = ConfigDict(populate_by_name=True)

    transfer_id: str = Field(examples=["tx-000981"])
    from_: str = Field(alias="from", examples=["6222020000000777"])
    to: str = Field(examples=["6222020000000901"])
    amount: str = Field(examples=["9900.00"])
    ts: str = Field(examples=["2026-03-02T01:44:07.120Z"])


class TraceNodeOut(BaseModel):
    """One account in a flow graph, with the money that went through it in the graph."""

    account: str = Field(examples=["6222020000000901"])
    depth: int = Field(ge=0, examples=[2])
    amount_in: str = Field(examples=["9900.00"])
    amount_out: str = Field(examples=["9800.00"])
    risk_level: RiskLevel = Field(examples=["medium"])
    alert_count: int = Field(ge=0, examples=[1])
    watchlisted: bool = Field(examples=[False])


class TraceOut(BaseModel):
    """Where the money of a transfer went (down) or came from (up)."""

    root: TraceTransferOut
    nodes: list[TraceNodeOut]
    edges: list[TraceTransferOut]
    truncated: bool = Field(description="True when the graph was cut at the edge limit")
    currency: str = Field(
        SCORING_CURRENCY,
        description="the currency of the amounts: the scoring currency; a transfer sent in "
        "another is counted at its reference value (`FRAUDWATCH_CURRENCY_RATES`)",
        examples=["CNY"],
    )


class WatchlistEntryIn(BaseModel):
    """A listing to add (or replace) on the list named in the path."""

    value: str = Field(
        description="account id, device id, phone number or IP address",
        examples=["6222020000000777"],
    )
    source: str = Field(examples=["police notice 2026-0311"])
    reason: str = Field(examples=["collection account of an investment scam"])
    expires_at: str | None = Field(
        None, description="RFC 3339 with offset; null = never", examples=["2027-03-01T00:00:00Z"]
    )


class WatchlistEntryOut(BaseModel):
    """A listing. `value` of a device, phone or IP is personal data (admins only)."""

    kind: WatchlistKind = Field(examples=["account"])
    value: str = Field(examples=["6222020000000777"])
    source: str = Field(examples=["police notice 2026-0311"])
    reason: str = Field(examples=["collection account of an investment scam"])
    added_at: str = Field(examples=["2026-03-02T09:41:07.120Z"])
    expires_at: str | None = Field(examples=["2027-03-01T00:00:00.000Z"])
    active: bool = Field(description="False once expired", examples=[True])


class WatchlistPutOut(WatchlistEntryOut):
    """A listing just added or replaced, and the past transfers it flagged."""

    retro_alerts: int = Field(
        description="Past transfers of a newly listed account (those state still holds, up "
        "to FRAUDWATCH_TRACE_TTL_DAYS) flagged now as `watchlist_retro` alerts; 0 when listing "
        "the same entry again, and for devices, phones and IPs",
        examples=[7],
    )


class WatchlistPage(BaseModel):
    """A page of one list, in key order."""

    items: list[WatchlistEntryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )
