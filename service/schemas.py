"""Response models at the HTTP boundary (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from pydantic import BaseModel, Field, StringConstraints

from models.alerts import Alert
from models.currency import SCORING_CURRENCY


class ReasonOut(BaseModel):
    """Why an alert was raised: a rule that fired, or the model (`rule` = "model")."""

    rule: str = Field(examples=["fan_out_rapid"])
    title: str = Field(examples=["Rapid fan-out to new payees"])
    evidence: dict[str, Any] = Field(examples=[{"src_distinct_payees_1h": 12}])
    version: int | None = None
    score: float | None = None
    summary: str | None = Field(None, examples=["12 distinct payees in 1 hour; 11 first-time"])
    suspect: Literal["payer", "payee"] | None = Field(
        None, description="The party this reason suspects (the rule declares it)"
    )


class ModelOut(BaseModel):
    """The model's opinion of the transfer."""

    name: str
    version: str
    score: float


class AlertOut(BaseModel):
    """One alert per flagged transfer (CONTRACT.md §3)."""

    alert_id: str = Field(examples=["al_3f1c9a0b7d2e4f5a6b7c8d9e"])
    transfer_id: str
    ts: str = Field(examples=["2026-03-01T22:15:03.120+08:00"])
    src_account: str
    dst_account: str
    amount: str = Field(examples=["49900.00"])
    currency: str = Field(examples=["CNY"])
    score: float = Field(ge=0, le=1)
    severity: Literal["low", "medium", "high", "critical"]
    reasons: list[ReasonOut]
    model: ModelOut | None
    status: Literal["open", "escalated", "confirmed", "appealed", "dismissed"]
    created_at: str
    suspect_account: str | None = Field(
        description="The account the alert suspects: the payer or the payee, as the strongest "
        "rule that fired declares (for the model, the one its strongest evidence is about)",
        examples=["6222020000000777"],
    )
    case_id: str | None = Field(
        None,
        description="The case the alert is grouped in (one per suspect account, ring cases "
        "merged over alerted money flows)",
        examples=["cs_9b3e0f1c2d4a5b6c7d8e9f01"],
    )

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        """From the stored alert."""
        data = msgspec.to_builtins(alert)
        data.pop("ts_ms", None)
        return cls.model_validate(data)


class AlertPage(BaseModel):
    """A page of alerts, newest first."""

    items: list[AlertOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class RiskReasonOut(BaseModel):
    """One reason for an account's risk level."""

    code: str = Field(examples=["fan_in"])
    text: str = Field(examples=["23 distinct payers in 24 hours"])
    level: str


class SharedIdentifierOut(BaseModel):
    """A device, phone or IP the account used in 7 days, and the other accounts on it.

    `value` is personal data: shown in clear only to roles that need it, and audited."""

    kind: Literal["device", "phone", "ip"]
    value: str = Field(examples=["+86 138 0013 8000"])
    other_accounts: list[str]


class AccountFactsOut(BaseModel):
    """Windowed facts behind the risk level, as of the account's latest transfer."""

    as_of: str | None
    # `first_time_payees_24h` / `first_time_payers_24h` are null in the first week of the
    # observation in force: whether a counterparty is new is unknown then, as for the rules.
    fan_out: dict[str, int | None] = Field(
        examples=[{"transfers_24h": 14, "distinct_payees_1h": 9, "distinct_payees_24h": 12,
                   "first_time_payees_24h": 11}]
    )  # fmt: skip
    fan_in: dict[str, int | None]
    amount_out_24h: str
    amount_in_24h: str
    currency: str = Field(
        SCORING_CURRENCY,
        description="the currency of the amounts: the scoring currency; a transfer sent in "
        "another is counted at its reference value (`FRAUDWATCH_CURRENCY_RATES`)",
        examples=["CNY"],
    )
    pass_through_ratio_24h: float | None
    account_age_days: float | None
    holder_birth_year: int | None
    kind: Literal["personal", "business"] | None
    shared_identifiers: list[SharedIdentifierOut]
    accounts_sharing_identifiers: list[str]


class ListingOut(BaseModel):
    """The account's own entry on the account watchlist."""

    source: str = Field(examples=["investigation"])
    reason: str | None = Field(
        description="Free text that may quote personal data: null for the bank role",
        examples=["confirmed fraud in alert al_3f1c9a0b7d2e4f5a6b7c8d9e"],
    )
    added_at: str | None = Field(examples=["2026-03-02T09:41:07.215Z"])
    expires_at: str | None


class SuppressionOut(BaseModel):
    """A rule (or `model`) an investigator's dismissal suppresses for this account."""

    rule: str = Field(examples=["fan_out_rapid"])
    until: str | None = Field(examples=["2026-04-01T09:41:07.215Z"])
    dismissed_alert_id: str = Field(examples=["al_3f1c9a0b7d2e4f5a6b7c8d9e"])
    evidence: dict[str, float] = Field(
        description="What the dismissed alert showed: an alert comes again once a volume here "
        "grows by half",
        examples=[{"src_distinct_payees_1h": 8}],
    )


class SuppressedHitOut(BaseModel):
    """An alert that was not raised because its pattern is suppressed for this account."""

    rules: list[str] = Field(examples=[["fan_out_rapid", "model"]])
    transfer_id: str
    ts: str | None


class SuppressionViewOut(BaseModel):
    """Suppressed patterns of the account and the hits they held back."""

    rules: list[SuppressionOut]
    suppressed_hits: int = Field(description="Hits held back while suppressed (the last 100)")
    latest_hits: list[SuppressedHitOut]


class AccountRiskOut(BaseModel):
    """The early-warning view of an account, for a bank deciding whether to let a customer
    pay it."""

    account_id: str
    risk_level: Literal["none", "low", "medium", "high", "critical"]
    reasons: list[RiskReasonOut]
    open_alerts: list[AlertOut] = Field(
        description="Its open and escalated alerts; empty for the bank role (the reasons count "
        "them; their counterparties and evidence are investigators' material)"
    )
    facts: AccountFactsOut
    listing: ListingOut | None = Field(
        None, description="Its entry on the account watchlist (payments to it are blocked)"
    )
    suppression: SuppressionViewOut | None = Field(
        None, description="Dismissed patterns suppressed for it (investigators and admins)"
    )


# Stripped first: a note of spaces only is no reason (the console trims too).
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S")]


class AlertActionIn(BaseModel):
    """An investigator's decision on an alert, with the reason for it."""

    action: Literal["escalate", "confirm_fraud", "dismiss", "appeal", "restore"] = Field(
        examples=["confirm_fraud"]
    )
    note: Note = Field(
        max_length=2000,
        description="Why: goes into the alert's history and the audit (trimmed; not blank)",
        examples=["Payee confirmed as a rented card by the branch; victim reached by phone."],
    )


class ActorOut(BaseModel):
    """Who took an action: the API key's id, name and role."""

    key_id: str = Field(examples=["key_4f2a9c0d1e3b"])
    name: str = Field(examples=["anti-fraud desk 3"])
    role: str = Field(examples=["investigator"])


class HistoryEntryOut(BaseModel):
    """One workflow action on an alert."""

    action: str = Field(examples=["confirm_fraud"])
    from_status: str = Field(alias="from", examples=["open"])
    to: str = Field(examples=["confirmed"])
    by: ActorOut
    at: str = Field(examples=["2026-03-02T09:41:07.215Z"])
    note: str

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class ConsequencesOut(BaseModel):
    """What the decision changed beyond the alert."""

    listed: str | None = Field(
        None,
        description="`confirm_fraud`: the suspect account, now on the account watchlist "
        "(source `investigation`); null when it was listed already",
        examples=["6222020000000777"],
    )
    unlisted: str | None = Field(
        None,
        description="`restore`: the suspect account, taken off the watchlist (only a listing "
        "from an investigation, and only when no other alert still confirms it)",
    )
    suppressed: list[str] = Field(
        default_factory=list,
        description="`dismiss`: the rules (and `model`) suppressed for the suspect account for "
        "FRAUDWATCH_SUPPRESS_DAYS, unless their evidence grows by half again",
        examples=[["fan_out_rapid", "model"]],
    )
    retro_alerts: int = Field(
        0, description="Past transfers of the newly listed account flagged (`watchlist_retro`)"
    )
    withdrawn_alerts: int = Field(
        0,
        description="`restore`: the undecided `watchlist_retro` alerts the lifted listing "
        "raised, dismissed with it (by `fraudwatch`, role `system`)",
    )


class AlertActionOut(BaseModel):
    """The alert after the action, the history entry the action wrote, and what else the
    decision changed."""

    alert: AlertOut
    entry: HistoryEntryOut
    consequences: ConsequencesOut


class HistoryPage(BaseModel):
    """An alert's workflow history, oldest first."""

    items: list[HistoryEntryOut]
    next_cursor: str | None


class RuleOut(BaseModel):
    """One rule in force."""

    id: str = Field(examples=["fan_out_rapid"])
    version: int = Field(examples=[2])
    title: str = Field(examples=["Rapid fan-out to new payees"])
    score: float


class RuleLibraryOut(BaseModel):
    """The rule library this API process has in force."""

    fingerprint: str = Field(examples=["3b9f0c2a71de"])
    rules: list[RuleOut]


class RuleReloadOut(RuleLibraryOut):
    """A reload the API accepted: workers pick up `generation` within about a second."""

    generation: int


class KeyIn(BaseModel):
    """A new API key's role and a name saying who holds it."""

    role: Literal["admin", "investigator", "analyst", "bank"] = Field(examples=["bank"])
    name: str = Field("", max_length=100, examples=["core banking, branch 0417"])


class KeyOut(BaseModel):
    """An API key's record; the key itself is never shown again after creation."""

    id: str = Field(examples=["key_4f2a9c0d1e3b"])
    name: str
    role: str
    created_at: str
    revoked_at: str | None


class NewKeyOut(KeyOut):
    """A key just created: `key` is shown this once only."""

    key: str = Field(examples=["fw_Q2hhbmdlIG1lIQ..."])


class KeyPage(BaseModel):
    """API keys, oldest first."""

    items: list[KeyOut]
    next_cursor: str | None


class AuditEntryOut(BaseModel):
    """One access to personal data (or an admin action): who, what, when."""

    id: str = Field(examples=["1772414467215-0"])
    at: str = Field(examples=["2026-03-02T09:41:07.215Z"])
    key_id: str
    key_name: str
    role: str
    method: str = Field(examples=["GET"])
    path: str = Field(examples=["/v1/accounts/6222020000000001/risk"])
    resource: str = Field(examples=["account 6222020000000001: shared identifiers, birth year"])


class AuditPage(BaseModel):
    """Audit entries, newest first."""

    items: list[AuditEntryOut]
    next_cursor: str | None
