"""Pre-transfer screening of a batch of prospective transfers, read-only.

Every request screened in one batch shares its round trips and its model call: the worker's
state functions in a dry run for all, one `assess` over all, one risk read for all payees.
A batch runs whole on the API's one screening thread (see `service/app.py`), never on the
event loop: a hung Redis then holds up screening alone, not `/healthz` or other requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.events import Transfer
from models.features import derive_features
from models.scorer import Assessment, Scorer
from models.taint import OUTSIDE_INPUT, taint_of
from rules.policy import Outcome, ScreeningPolicy
from streams.state.pipelines import AnyRedis
from streams.state.redis_store import PendingFacts, RedisStateStore, held_by_another
from streams.state.risk_read import AccountRisk, PendingRisks
from streams.state.watchlists import WatchlistView


@dataclass(frozen=True, slots=True)
class Screened:
    """What screening found for one transfer: its verdict, what the policy makes of it, and
    its payee's risk."""

    transfer: Transfer
    verdict: Assessment
    outcome: Outcome
    payee: AccountRisk
    already_processed: bool
    # Its id already names another transfer: the worker would dead-letter it.
    reused_id: bool


@dataclass(frozen=True, slots=True)
class ScreeningContext:
    """What screening reads: the state (dry run) and the watchlists."""

    client: AnyRedis
    state: RedisStateStore
    lists: WatchlistView


def screen_transfers(
    context: ScreeningContext,
    scorer: Scorer,
    policy: ScreeningPolicy,
    transfers: Sequence[Transfer],
) -> list[Screened]:
    """Score each transfer on the state as it stands, as the worker would, storing nothing;
    decide what the bank should do by the policy; with its payee's risk. A transfer already
    processed gets its stored facts' verdict.

    Two round trips for the batch: the state functions' dry run together with the payees' risk
    reads, then the reads that depend on those (who shares their devices, their alerts)."""
    payees = list(dict.fromkeys(t.dst_account for t in transfers))
    lists = context.lists.current()
    risks = PendingRisks(payees, lists, context.state.library)

    def first() -> tuple[PendingFacts, list[Any]]:
        pipe = context.client.pipeline(transaction=False)
        dry_run = context.state.queue_peek(pipe, transfers)
        context.state.queue_transfer_records(pipe, transfers)
        risks.queue(pipe)
        return dry_run, pipe.execute()

    # The dry run calls the state functions: a Redis that lost them gets them again.
    dry_run, replies = context.state.library.calling(context.client, first)
    facts = dry_run.facts(replies[: dry_run.replies])
    records_end = dry_run.replies + len(transfers)
    records = replies[dry_run.replies : records_end]
    listed = context.lists.hits(transfers, lists)
    features = [
        derive_features(t, f.payer, f.payee, f.entities, hits, f.observed_since_ms,
                        taint_of(t.transfer_id, t.ts_ms, *OUTSIDE_INPUT, f.payer_marks))
        for t, f, hits in zip(transfers, facts, listed, strict=True)
    ]  # fmt: skip
    verdicts = scorer.assess(transfers, features)
    outcomes = [
        policy.decide(
            verdict.score,
            [reason.rule for reason in verdict.reasons],
            payee_listed=parties.payee,
            holder_age_years=row["src_holder_age"],
            features=row,
        )
        for verdict, parties, row in zip(verdicts, listed, features, strict=True)
    ]
    payee_risks = risks.follow_up(replies[records_end:]).read(context.client)
    by_payee = dict(zip(payees, payee_risks, strict=True))
    return [
        Screened(t, verdict, outcome, by_payee[t.dst_account], not f.first_delivery,
                 held_by_another(t, stored))
        for t, verdict, outcome, f, stored in zip(transfers, verdicts, outcomes, facts, records,
                                                  strict=True)
    ]  # fmt: skip
