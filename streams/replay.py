"""Replaying recorded history through the worker's own batch path, without Kafka or Redis.

Training, evaluation and `fraudwatch backtest` all go through `replay`, which feeds the lines of
a file to the same `BatchProcessor` (parse → state store → `derive_features` → scorer → sink)
that the streaming worker runs. The state store defaults to the in-memory twin of the Redis
store, so a replayed transfer gets exactly the features it gets when streamed. `models/` gets
`replay_features` handed in by the composition root (`service/cli`): it never imports this.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import numpy as np

from models.alerts import SeverityBands
from models.dataset import FEATURE_NAMES, FeatureTable, feature_matrix
from models.scorer import Scorer
from rules.engine import RuleSet
from streams.batch import AlertSink, BatchOutcome, BatchProcessor, MemoryAlertSink, Message
from streams.state.base import EntityHasher, StateStore
from streams.state.memory import MemoryStateStore

TRANSFERS_TOPIC = "transfers"
ACCOUNTS_TOPIC = "accounts"
DEFAULT_BATCH_SIZE = 500
# The partition history replayed into live state stands in (no Kafka partition is negative).
HISTORY_PARTITION = -2
# Pseudonyms made during a replay never leave the process, so any fixed key will do.
_REPLAY_HASH_KEY = "fraudwatch-replay"


def memory_store() -> MemoryStateStore:
    """A fresh in-memory state store with the default limits."""
    return MemoryStateStore(EntityHasher(_REPLAY_HASH_KEY))


def features_only_scorer() -> Scorer:
    """A scorer with no rules, no model and an unreachable threshold: replay for features."""
    never = SeverityBands(alert_threshold=2.0, medium=2.0, high=2.0, critical=2.0)
    return Scorer(RuleSet(()), never)


def replay(
    transfers: Iterable[bytes],
    profiles: Iterable[bytes] = (),
    *,
    store: StateStore | None = None,
    scorer: Scorer | None = None,
    sink: AlertSink | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    partition: int = 0,
) -> Iterator[BatchOutcome]:
    """Process profile lines, then transfer lines in batches; yield each batch's outcome.

    A line's 0-based position in its input stands in for the Kafka offset, so a rejected
    line can be named, and `partition` for its partition (history loaded into a live state
    takes `HISTORY_PARTITION`, so that its alert marks count for the live stream that
    follows, whose offsets start again). Without a `scorer` only features are computed (no
    alerts)."""
    processor = BatchProcessor(
        store or memory_store(), sink or MemoryAlertSink(), scorer or features_only_scorer()
    )
    profile_messages = [
        Message("profile", ACCOUNTS_TOPIC, 0, offset, line)
        for offset, line in enumerate(profiles)
    ]
    if profile_messages:
        yield processor.process(profile_messages)
    numbered = enumerate(transfers)
    while batch := list(islice(numbered, batch_size)):
        yield processor.process(
            [
                Message("transfer", TRANSFERS_TOPIC, partition, offset, line)
                for offset, line in batch
            ]
        )


def replay_features(
    transfers: Iterable[bytes], profiles: Iterable[bytes] = (), scorer: Scorer | None = None
) -> FeatureTable:
    """Replay lines through the in-memory store and collect every first delivery's features.

    The alerts of `scorer` mark the money they move on (`models.taint`), as in the worker;
    without one, no transfer alerts and no money is marked."""
    ids: list[str] = []
    times: list[int] = []
    blocks: list[np.ndarray] = []
    seen: set[str] = set()
    rejected = 0
    for outcome in replay(transfers, profiles, scorer=scorer):
        rejected += sum(r.message.kind == "transfer" for r in outcome.rejected)
        keep = []
        for index, transfer in enumerate(outcome.transfers):
            # A repeated transfer id is a redelivery: it is one transfer, counted once.
            if transfer.transfer_id not in seen:
                seen.add(transfer.transfer_id)
                keep.append(index)
                ids.append(transfer.transfer_id)
                times.append(transfer.ts_ms)
        blocks.append(feature_matrix([outcome.features[i] for i in keep], FEATURE_NAMES))
    matrix = np.vstack(blocks) if blocks else np.empty((0, len(FEATURE_NAMES)))
    return FeatureTable(ids, np.asarray(times, dtype=np.int64), matrix, rejected)
