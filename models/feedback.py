"""Investigators' decisions as training labels: a confirmed alert is fraud, a dismissed one is not.

`FeedbackSource` is what training reads; the file source reads JSON Lines of
`{"transfer": {...contract §1 transfer...}, "label": 1 | 0 | "confirmed" | "dismissed"}`.
A source over the alert workflow's store (Redis) plugs in with the same shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson

from models.jsonl import read_lines

# Only final decisions teach the model; open, escalated and appealed alerts are still pending.
_DISPOSITION_LABELS = {"confirmed": 1, "dismissed": 0, 1: 1, 0: 0}


class FeedbackSource(Protocol):
    """Labelled transfers from investigators' dispositions."""

    def __iter__(self) -> Iterator[tuple[dict[str, Any], int]]:
        """(transfer as a contract dict, 1 for fraud / 0 for legitimate), in any order."""
        ...


class FeedbackFileError(ValueError):
    """A feedback file line that is not a labelled transfer."""


class JsonlFeedback:
    """Dispositions from a JSON Lines file (plain or gzip); pending decisions are skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[tuple[dict[str, Any], int]]:
        for number, line in enumerate(read_lines(self.path), start=1):
            try:
                record = orjson.loads(line)
                transfer, label = record["transfer"], record["label"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise FeedbackFileError(
                    f"{self.path}:{number}: expected {{'transfer': {{...}}, 'label': ...}}"
                ) from None
            if not isinstance(transfer, dict):
                raise FeedbackFileError(f"{self.path}:{number}: `transfer` must be an object")
            if isinstance(label, str | int) and label in _DISPOSITION_LABELS:
                yield transfer, _DISPOSITION_LABELS[label]
