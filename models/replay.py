"""Replaying recorded history through the worker's own batch path, without Kafka or Redis.

Training, evaluation and `fraudwatch backtest` all go through `replay`, which feeds the lines of
a file to the same `BatchProcessor` (parse → state store → `derive_features` → scorer → sink)
that the streaming worker runs. The state store defaults to the in-memory twin of the Redis
store, so a replayed transfer gets exactly the features it gets when streamed.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from models.alerts import SeverityBands
from models.scorer import Scorer
from rules.engine import RuleSet
from streams.batch import AlertSink, BatchOutcome, BatchProcessor, MemoryAlertSink, Message
from streams.state.base import EntityHasher, StateStore
from streams.state.memory import MemoryStateStore

TRANSFERS_TOPIC = "transfers"
ACCOUNTS_TOPIC = "accounts"
DEFAULT_BATCH_SIZE = 500
# Pseudonyms made during a replay never leave the process, so any fixed key will do.
_REPLAY_HASH_KEY = "fraudwatch-replay"
_GZIP_MAGIC = b"\x1f\x8b"


def read_lines(path: Path) -> Iterator[bytes]:
    """The non-blank lines of a JSON Lines file (plain or gzip), without line endings."""
    with path.open("rb") as probe:
        is_gzip = probe.read(2) == _GZIP_MAGIC
    with gzip.open(path, "rb") if is_gzip else path.open("rb") as lines:
        for line in lines:
            record = line.rstrip(b"\r\n")
            if record.strip():
                yield record


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
) -> Iterator[BatchOutcome]:
    """Process profile lines, then transfer lines in batches; yield each batch's outcome.

    A line's 0-based position in its input stands in for the Kafka offset, so a rejected
    line can be named. Without a `scorer` only features are computed (no alerts).
    """
    processor = BatchProcessor(
        store or memory_store(),
        sink or MemoryAlertSink(),
        scorer or features_only_scorer(),
        TRANSFERS_TOPIC,
    )
    profile_messages = [
        Message(ACCOUNTS_TOPIC, 0, offset, line) for offset, line in enumerate(profiles)
    ]
    if profile_messages:
        yield processor.process(profile_messages)
    numbered = enumerate(transfers)
    while batch := list(islice(numbered, batch_size)):
        yield processor.process(
            [Message(TRANSFERS_TOPIC, 0, offset, line) for offset, line in batch]
        )
