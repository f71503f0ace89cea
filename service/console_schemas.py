"""Response models of the routes the investigator console needs (they are plain API routes
too): who am I, the vocabulary, alert counts, an account's transfers, a watchlist import."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.currency import SCORING_CURRENCY

StatusName = Literal["open", "escalated", "confirmed", "appealed", "dismissed"]


class MeOut(BaseModel):
    """The caller as its API key says."""

    key_id: str = Field(examples=["key_4f2a9c0d1e3b"])
    name: str = Field(examples=["anti-fraud desk 3"])
    role: Literal["admin", "investigator", "analyst", "bank"] = Field(examples=["investigator"])


class RuleTitleOut(BaseModel):
    """A rule of the library in force: its id and title."""

    id: str = Field(examples=["fan_out_rapid"])
    title: str = Field(examples=["Rapid fan-out to new payees"])


class ActionMoveOut(BaseModel):
    """A workflow action: the statuses it may start from and the one it leads to."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    action: str = Field(examples=["confirm_fraud"])
    from_: list[StatusName] = Field(alias="from", examples=[["open", "escalated", "appealed"]])
    to: StatusName = Field(examples=["confirmed"])


class GlossaryOut(BaseModel):
    """The words an alert is written in: feature descriptions (the evidence keys), rule
    titles and the workflow's moves."""

    features: dict[str, str] = Field(
        examples=[{"src_distinct_payees_1h": "distinct payees the payer last paid within the "
                   "past hour"}]
    )  # fmt: skip
    rules: list[RuleTitleOut]
    actions: list[ActionMoveOut]


class AlertCountsOut(BaseModel):
    """How many alerts are in each status, and in all."""

    counts: dict[StatusName, int] = Field(
        examples=[{"open": 41, "escalated": 3, "confirmed": 12, "appealed": 1, "dismissed": 9}]
    )
    total: int = Field(examples=[66])


class AccountTransferOut(BaseModel):
    """One transfer into or out of an account, from its windowed state."""

    transfer_id: str = Field(examples=["tx-000981"])
    direction: Literal["in", "out"] = Field(examples=["out"])
    counterparty: str = Field(
        examples=["6222020000000901"], description="payee (out) or payer (in)"
    )
    amount: str = Field(examples=["9900.00"])
    currency: str = Field(
        SCORING_CURRENCY,
        description="the currency of the amounts: the scoring currency; a transfer sent in "
        "another is counted at its reference value (`FRAUDWATCH_CURRENCY_RATES`)",
        examples=["CNY"],
    )
    ts: str = Field(examples=["2026-03-02T01:44:07.120Z"])


class AccountTransferPage(BaseModel):
    """An account's recent transfers in one direction, newest first."""

    items: list[AccountTransferOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class ImportProblemOut(BaseModel):
    """A CSV row that was not imported."""

    line: int = Field(examples=[4])
    reason: str = Field(examples=["`expires_at` is not an RFC 3339 time with an offset"])


class WatchlistImportOut(BaseModel):
    """What a CSV import did: rows imported (new or replacing), and each bad row."""

    imported: int = Field(examples=[120])
    new: int = Field(examples=[118])
    replaced: int = Field(examples=[2])
    errors: list[ImportProblemOut]
    retro_alerts: int = Field(
        description="Past transfers of the imported accounts flagged as `watchlist_retro` "
        "alerts (none twice: an import of the same file again flags nothing new)",
        examples=[31],
    )
