"""Labelled feature tables for training and evaluation, built by replaying recorded history.

A simulated (or exported) dataset is a directory with `transfers.jsonl.gz` (or `.jsonl`),
optionally `accounts.jsonl`, and `labels.json`, where a transfer is fraudulent iff its id is
a key of `labels["transfers"]` (whose value names its ring and typology).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.features import FEATURE_NAMES, Features
from models.jsonl import read_lines

# The features the model reads, in matrix column order. Spelled out, so that features added to
# the vocabulary later (watchlist hits: outside knowledge, not behaviour) never reach a model
# by accident, and a shipped model keeps matching until it is retrained on purpose.
# Left out on purpose: `src_known_days` / `dst_known_days` measure how long fraudwatch has been
# watching, not how the account behaves, so they would teach the model when recording began.
MODEL_FEATURES: tuple[str, ...] = (
    "amount_minor",
    "hour_of_day",
    "is_first_time_payee",
    "amount_to_avg_30d",
    "src_out_count_1h",
    "src_out_count_24h",
    "src_distinct_payees_1h",
    "src_distinct_payees_24h",
    "src_new_payees_24h",
    "src_new_payee_share_24h",
    "src_out_amount_24h_minor",
    "src_in_count_24h",
    "src_in_amount_24h_minor",
    "src_distinct_payers_24h",
    "src_pass_through_24h",
    "src_dwell_minutes",
    "src_account_age_days",
    "src_holder_age",
    "src_is_business",
    "src_devices_7d",
    "dst_in_count_1h",
    "dst_in_count_24h",
    "dst_distinct_payers_1h",
    "dst_distinct_payers_24h",
    "dst_new_payers_24h",
    "dst_in_amount_24h_minor",
    "dst_out_amount_24h_minor",
    "dst_pass_through_24h",
    "dst_account_age_days",
    "dst_holder_age",
    "dst_is_business",
    "device_accounts_7d",
    "phone_accounts_7d",
    "ip_accounts_7d",
)

TRANSFER_FILES = ("transfers.jsonl.gz", "transfers.jsonl")
ACCOUNTS_FILE = "accounts.jsonl"
LABELS_FILE = "labels.json"


def feature_matrix(rows: Sequence[Features], names: Sequence[str] = MODEL_FEATURES) -> np.ndarray:
    """A float64 matrix, one row per feature dict and one column per name (NaN if absent)."""
    matrix = np.empty((len(rows), len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        matrix[i] = [row.get(name, np.nan) for name in names]
    return matrix


@dataclass(frozen=True)
class DataFiles:
    """The files of one dataset directory."""

    transfers: Path
    accounts: Path | None
    labels: Path | None

    @classmethod
    def of(cls, directory: Path) -> DataFiles:
        """Locate the files in `directory`; raise `FileNotFoundError` if no transfers file."""
        for name in TRANSFER_FILES:
            if (directory / name).is_file():
                accounts = directory / ACCOUNTS_FILE
                labels = directory / LABELS_FILE
                return cls(
                    directory / name,
                    accounts if accounts.is_file() else None,
                    labels if labels.is_file() else None,
                )
        raise FileNotFoundError(f"{directory}: no {' or '.join(TRANSFER_FILES)}")

    @property
    def paths(self) -> list[Path]:
        """The files that exist, in a fixed order (for hashing)."""
        return [p for p in (self.transfers, self.accounts, self.labels) if p is not None]


def sha256_of_files(paths: Iterable[Path]) -> str:
    """One sha256 over the files' names and bytes, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class FeatureTable:
    """Replayed transfers: ids, event times and every feature (columns = FEATURE_NAMES)."""

    transfer_ids: list[str]
    ts_ms: np.ndarray
    features: np.ndarray
    rejected: int

    def columns(self, names: Sequence[str] = MODEL_FEATURES) -> np.ndarray:
        """The sub-matrix of the named columns (the model's input by default)."""
        index = [FEATURE_NAMES.index(name) for name in names]
        return self.features[:, index]

    def rows(self, start: int, stop: int) -> list[Features]:
        """Rows `start:stop` as feature dicts (what rules evaluate)."""
        return [
            dict(zip(FEATURE_NAMES, row, strict=True)) for row in self.features[start:stop].tolist()
        ]


# Replays transfer lines (after profile lines) through the worker's batch path and returns
# every first delivery's features: `streams.replay.replay_features`, handed in by the caller.
FeatureReplay = Callable[[Iterable[bytes], Iterable[bytes]], FeatureTable]


@dataclass(frozen=True)
class Labels:
    """Which transfers are fraudulent, and the ring and typology of each."""

    typology: dict[str, str]
    ring: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> Labels:
        """Read a simulator `labels.json`."""
        doc = json.loads(path.read_text(encoding="utf-8"))
        transfers: dict[str, dict[str, str]] = doc.get("transfers", {})
        return cls(
            {tid: info.get("typology", "unknown") for tid, info in transfers.items()},
            {tid: info.get("ring", "") for tid, info in transfers.items()},
        )

    def of(self, transfer_ids: Sequence[str]) -> np.ndarray:
        """1 for each fraudulent transfer id, else 0."""
        return np.fromiter((tid in self.typology for tid in transfer_ids), dtype=np.int8)


@dataclass
class LabelledData:
    """A replayed dataset with its labels."""

    table: FeatureTable
    labels: Labels
    y: np.ndarray
    files: DataFiles


def load_labelled(directory: Path, replay_features: FeatureReplay) -> LabelledData:
    """Replay a labelled dataset directory (raises `FileNotFoundError` without labels.json)."""
    files = DataFiles.of(directory)
    if files.labels is None:
        raise FileNotFoundError(f"{directory}: no {LABELS_FILE}")
    profiles = read_lines(files.accounts) if files.accounts else ()
    table = replay_features(read_lines(files.transfers), profiles)
    labels = Labels.load(files.labels)
    return LabelledData(table, labels, labels.of(table.transfer_ids), files)
