"""Investigators' dispositions as training labels: confirmed fraud → 1, dismissed → 0.

Each alert keeps the feature vector it was scored on (`AlertStore.put_alerts(features=...)`),
so `fraudwatch train --with-feedback` learns from decisions without replaying history.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import msgspec

from models.workflow import LABELS
from streams.state.alert_store import features_key, index_key
from streams.state.pipelines import AnyRedis

CHUNK = 500

LabelledRow = tuple[dict[str, float], int, str]


def _vector(raw: bytes) -> dict[str, float]:
    decoded: dict[str, float | None] = msgspec.json.decode(raw)
    return {name: math.nan if value is None else float(value) for name, value in decoded.items()}


def iter_labelled_features(client: AnyRedis) -> Iterator[LabelledRow]:
    """(features, label, alert_id) for every confirmed or dismissed alert that kept its
    features (alerts stored before features were kept are skipped), confirmed first, then
    each status oldest event first."""
    for status, label in LABELS.items():
        members: list[bytes] = client.zrange(index_key("status", status), 0, -1)  # type: ignore[assignment]
        ids = [member.decode() for member in members]
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            raws: list[bytes | None] = client.mget([features_key(i) for i in chunk])  # type: ignore[assignment]
            for alert_id, raw in zip(chunk, raws, strict=True):
                if raw is not None:
                    yield _vector(raw), label, alert_id
