"""Labelled feature tables for training and evaluation, built by replaying recorded history.

A simulated (or exported) dataset is a directory with `transfers.jsonl.gz` (or `.jsonl`),
optionally `accounts.jsonl`, and `labels.json`, where a transfer is fraudulent iff its id is
a key of `labels["transfers"]` (whose value names its ring and typology); `labels["own_bank"]`
may name the bank whose customers the `own-bank` coverage profiles (default: the bank with
the most accounts). Each dataset replays from empty state under one profile coverage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from models.coverage import CoverageView, account_banks, select_profiles
from models.features import FEATURE_NAMES, LONGER_COUNT_FEATURES, Features
from models.jsonl import json_objects, lines_digest, read_lines

# The features the model reads, in matrix column order. Spelled out, so that features added to
# the vocabulary later (watchlist hits: outside knowledge, not behaviour) never reach a model
# by accident, and a shipped model keeps matching until it is retrained on purpose.
# Left out on purpose: `src_known_days` / `dst_known_days` measure how long fraudwatch has been
# watching, not how the account behaves, so they would teach the model when recording began.
# Last, the counts of the 6 days before the last 24 hours and the taint features
# (`src_tainted_*`): learnt from marks made by a model that had not seen the training data
# (`models.training.check_marker_unseen`, README Detection).
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
    *LONGER_COUNT_FEATURES,
    "src_tainted_in_amount_24h_minor",
    "src_tainted_in_count_24h",
    "src_tainted_in_share_24h",
    "src_minutes_since_tainted_in",
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
    """Which transfers are fraudulent, the ring and typology of each, and the own bank."""

    typology: dict[str, str]
    ring: dict[str, str]
    own_bank: str | None = None
    seed: int | None = None  # a simulated dataset's seed
    # The rings' own accounts (mules, cash-out and collection accounts, not their victims),
    # where the labels give each account's role; and the fraudulent transfers those accounts
    # sent (`with_ring_moves`): the ring moving money itself.
    ring_accounts: frozenset[str] = frozenset()
    ring_moves: frozenset[str] = frozenset()
    # `models.jsonl.lines_digest` of the transfers labelled (the simulator writes it).
    transfers_digest: str | None = None

    @classmethod
    def load(cls, path: Path) -> Labels:
        """Read a `labels.json`: the simulator's, or a bank's own with `transfers` an object
        of fraudulent transfer ids (each with an optional `typology` and `ring`) or a list of
        them; a file of another shape is a ValueError naming the file and field."""
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: not a JSON object with a `transfers` field")
        transfers = doc.get("transfers")
        if isinstance(transfers, list) and all(isinstance(tid, str) for tid in transfers):
            transfers = {tid: {} for tid in transfers}
        if not isinstance(transfers, dict):
            raise ValueError(
                f"{path}: `transfers` must name the fraudulent transfers: an object of "
                'transfer ids (each {"typology": ..., "ring": ...}) or a list of transfer ids'
            )
        for tid, info in transfers.items():
            if not isinstance(info, dict) or not all(
                isinstance(info.get(field, ""), str) for field in ("typology", "ring")
            ):
                raise ValueError(
                    f"{path}: `transfers.{tid}` must be an object whose `typology` and `ring` "
                    "are strings"
                )
        accounts = doc.get("accounts")
        if not isinstance(accounts, dict):  # roles are optional; without them, no ring moves
            accounts = {}
        own_bank, seed, digest = doc.get("own_bank"), doc.get("seed"), doc.get("transfers_digest")
        return cls(
            {tid: info.get("typology", "unknown") for tid, info in transfers.items()},
            {tid: info.get("ring", "") for tid, info in transfers.items()},
            own_bank if isinstance(own_bank, str) else None,
            seed if isinstance(seed, int) else None,
            frozenset(
                account
                for account, info in accounts.items()
                if isinstance(info, dict) and info.get("role", "victim") != "victim"
            ),
            transfers_digest=digest if isinstance(digest, str) else None,
        )

    def with_ring_moves(self, transfers: Iterable[bytes]) -> Labels:
        """These labels with `ring_moves` found in the transfer lines (lines that are not
        JSON objects are skipped; without ring accounts nothing is read)."""
        if not self.ring_accounts:
            return self
        moves = frozenset(
            tid
            for doc in json_objects(transfers)
            if isinstance(tid := doc.get("transfer_id"), str)
            and tid in self.typology
            and isinstance(src := doc.get("src_account"), str)
            and src in self.ring_accounts
        )
        return replace(self, ring_moves=moves)

    def of(self, transfer_ids: Sequence[str]) -> np.ndarray:
        """1 for each fraudulent transfer id, else 0."""
        return np.fromiter((tid in self.typology for tid in transfer_ids), dtype=np.int8)


@dataclass
class LabelledData:
    """A replayed dataset with its labels, under one profile coverage."""

    table: FeatureTable
    labels: Labels
    y: np.ndarray
    files: list[DataFiles]
    views: list[CoverageView]

    def describe(self) -> str:
        """What the replay saw, e.g. `own-bank (ICBC): profiles for 1,241 of the 5,131
        accounts in the transfers` (summed over pooled datasets)."""
        first = self.views[0]
        pooled = CoverageView(
            first.coverage,
            [],
            first.own_bank if len({v.own_bank for v in self.views}) == 1 else None,
            sum(view.profiled_accounts for view in self.views),
            sum(view.accounts for view in self.views),
        )
        count = f" in {len(self.views)} datasets" if len(self.views) > 1 else ""
        return pooled.describe() + count


class LabelledSource:
    """A labelled dataset directory, replayed on demand under any profile coverage."""

    def __init__(self, directory: Path, replay_features: FeatureReplay) -> None:
        self._replay_features = replay_features
        self.files = DataFiles.of(directory)
        if self.files.labels is None:
            raise FileNotFoundError(f"{directory}: no {LABELS_FILE}")
        self.labels = Labels.load(self.files.labels).with_ring_moves(
            read_lines(self.files.transfers)
        )
        digest = self.labels.transfers_digest
        if digest is not None and lines_digest(read_lines(self.files.transfers)) != digest:
            raise ValueError(
                f"{self.files.labels}: written for other transfers than "
                f"{self.files.transfers} (their digest differs); figures from them would "
                "be wrong: use the labels written with these transfers"
            )
        self.profiles = list(read_lines(self.files.accounts)) if self.files.accounts else []
        self._banks: dict[str, str] | None = None

    @property
    def banks(self) -> dict[str, str]:
        """Each account's bank, as its transfers name it (read once)."""
        if self._banks is None:
            self._banks = account_banks(read_lines(self.files.transfers))
        return self._banks

    def view(self, coverage: str) -> CoverageView:
        """The profiles a deployment with this coverage would have."""
        return select_profiles(self.profiles, coverage, self.banks, self.labels.own_bank)

    def replay(self, profiles: CoverageView) -> LabelledData:
        """Replay the transfers from empty state with these profiles."""
        table = self._replay_features(read_lines(self.files.transfers), profiles.profiles)
        if self.labels.typology and not self.labels.of(table.transfer_ids).any():
            raise ValueError(
                f"{self.files.labels}: none of its {len(self.labels.typology):,} fraudulent "
                f"transfers is in {self.files.transfers}: the labels belong to other data"
            )
        return LabelledData(
            table, self.labels, self.labels.of(table.transfer_ids), [self.files], [profiles]
        )


def load_labelled(
    directory: Path, replay_features: FeatureReplay, coverage: str = "all"
) -> LabelledData:
    """Replay a labelled dataset directory under a profile coverage (raises
    `FileNotFoundError` without labels.json)."""
    source = LabelledSource(directory, replay_features)
    return source.replay(source.view(coverage))


def concatenate(parts: Sequence[LabelledData]) -> LabelledData:
    """Several replayed datasets as one (each replayed from its own empty state); transfer
    ids must not repeat across them (simulated ids carry their seed)."""
    if len(parts) == 1:
        return parts[0]
    ids = [tid for part in parts for tid in part.table.transfer_ids]
    if len(set(ids)) != len(ids):
        raise ValueError("the datasets share transfer ids; evaluate them one at a time")
    table = FeatureTable(
        ids,
        np.concatenate([part.table.ts_ms for part in parts]),
        np.vstack([part.table.features for part in parts]),
        sum(part.table.rejected for part in parts),
    )
    # Ring ids are per dataset ("ring-00003" of one seed is not that of another).
    labels = Labels(
        {k: v for part in parts for k, v in part.labels.typology.items()},
        {k: f"{n}:{v}" for n, part in enumerate(parts) for k, v in part.labels.ring.items()},
        ring_accounts=frozenset().union(*(part.labels.ring_accounts for part in parts)),
        ring_moves=frozenset().union(*(part.labels.ring_moves for part in parts)),
    )
    return LabelledData(
        table,
        labels,
        np.concatenate([part.y for part in parts]),
        [files for part in parts for files in part.files],
        [view for part in parts for view in part.views],
    )
