"""Pre-transfer screening of a batch of prospective transfers, read-only.

Every request screened in one batch shares its round trips and its model call: the worker's
state scripts in a dry run for all, one `assess` over all, one risk read for all payees.
The round trips go through the asyncio Redis client, so the event loop serves other requests
(and `/healthz`) while Redis answers, or while it does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio

from models.events import Transfer
from models.features import derive_features
from models.scorer import Assessment, Scorer
from streams.state.pipelines import AnyPipeline
from streams.state.redis_store import PendingFacts, RedisStateStore
from streams.state.risk_read import AccountRisk, PendingRisks
from streams.state.transport import is_missing_function
from streams.state.watchlists import WatchlistView

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Screened:
    """What screening found for one transfer: its verdict and its payee's risk."""

    transfer: Transfer
    verdict: Assessment
    payee: AccountRisk
    already_processed: bool


@dataclass(slots=True)
class ScreeningContext:
    """What screening reads: the state (dry run) and the watchlists, through `client`;
    `load_functions` (blocking, run on a worker thread) puts the functions it calls into
    Redis."""

    client: redis.asyncio.Redis | redis.asyncio.RedisCluster
    state: RedisStateStore
    lists: WatchlistView
    load_functions: Callable[[], None]
    _loaded: bool = field(default=False, init=False)

    async def send(self, queue: Callable[[AnyPipeline], T]) -> tuple[T, list[Any]]:
        """What `queue` returns and the replies to what it put on a pipeline, in one round
        trip (none for an empty pipeline). The functions are loaded first: once, and again
        when a restarted Redis lost them (every call here is a dry run)."""
        if not self._loaded:
            await asyncio.to_thread(self.load_functions)
            self._loaded = True
        try:
            return await self._send(queue)
        except redis.asyncio.ResponseError as error:
            if not is_missing_function(error):
                raise
            await asyncio.to_thread(self.load_functions)
            return await self._send(queue)

    async def _send(self, queue: Callable[[AnyPipeline], T]) -> tuple[T, list[Any]]:
        pipe = self.client.pipeline(transaction=False)
        queued = queue(pipe)
        return queued, (await pipe.execute() if len(pipe) else [])


async def screen_transfers(
    context: ScreeningContext, scorer: Scorer, transfers: Sequence[Transfer]
) -> list[Screened]:
    """Score each transfer on the state as it stands, as the worker would, storing nothing;
    with its payee's risk. A transfer already processed gets its stored facts' verdict.

    Two round trips for the batch: the state scripts' dry run together with the payees' risk
    reads, then the reads that depend on those (who shares their devices, their alerts)."""
    payees = list(dict.fromkeys(t.dst_account for t in transfers))
    lists = context.lists.latest
    risks = PendingRisks(payees, lists, context.state.library)

    def first(pipe: AnyPipeline) -> PendingFacts:
        dry_run = context.state.queue_peek(pipe, transfers)
        risks.queue(pipe)
        return dry_run

    dry_run, replies = await context.send(first)
    facts = dry_run.facts(replies[: dry_run.replies])
    follow_up = risks.follow_up(replies[dry_run.replies :])
    _, second = await context.send(follow_up.queue)
    listed = context.lists.hits(transfers, lists)
    features = [
        derive_features(t, f.payer, f.payee, f.entities, hits)
        for t, f, hits in zip(transfers, facts, listed, strict=True)
    ]
    verdicts = scorer.assess(transfers, features)
    by_payee = dict(zip(payees, follow_up.finish(second), strict=True))
    return [
        Screened(t, verdict, by_payee[t.dst_account], not f.first_delivery)
        for t, verdict, f in zip(transfers, verdicts, facts, strict=True)
    ]
