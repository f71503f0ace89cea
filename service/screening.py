"""Pre-transfer screening of a batch of prospective transfers, read-only.

Every request screened in one batch shares its round trips and its model call: the worker's
state scripts in a dry run for all, one `assess` over all, one risk read for all payees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from models.events import Transfer
from models.features import derive_features
from models.scorer import Assessment, Scorer
from streams.state.alert_store import AlertStore
from streams.state.redis_store import RedisStateStore
from streams.state.risk_read import AccountRisk, read_account_risks
from streams.state.watchlists import WatchlistView


@dataclass(frozen=True, slots=True)
class Screened:
    """What screening found for one transfer: its verdict and its payee's risk."""

    transfer: Transfer
    verdict: Assessment
    payee: AccountRisk
    already_processed: bool


@dataclass(frozen=True, slots=True)
class ScreeningContext:
    """What screening reads: the state (dry run), the lists, alerts, and the scorer in force."""

    client: redis.Redis
    state: RedisStateStore
    lists: WatchlistView
    alerts: AlertStore


def screen_transfers(
    context: ScreeningContext, scorer: Scorer, transfers: Sequence[Transfer]
) -> list[Screened]:
    """Score each transfer on the state as it stands, as the worker would, storing nothing;
    with its payee's risk. A transfer already processed gets its stored facts' verdict."""
    facts = context.state.peek(transfers)
    listed = context.lists.hits(transfers)
    features = [
        derive_features(t, f.payer, f.payee, f.entities, hits)
        for t, f, hits in zip(transfers, facts, listed, strict=True)
    ]
    verdicts = scorer.assess(transfers, features)
    payees = list(dict.fromkeys(t.dst_account for t in transfers))
    lists = context.lists
    risks = read_account_risks(context.client, context.alerts, lists.store, lists.current(), payees)
    by_payee = dict(zip(payees, risks, strict=True))
    return [
        Screened(t, verdict, by_payee[t.dst_account], not f.first_delivery)
        for t, verdict, f in zip(transfers, verdicts, facts, strict=True)
    ]
