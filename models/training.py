"""Training a model from labelled history (and investigators' feedback) into an artifact."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import sklearn
import skops

from models.alerts import Alert
from models.coverage import PROFILE_COVERAGES, random_profiles
from models.dataset import (
    MODEL_FEATURES,
    TRANSFER_FILES,
    DataFiles,
    FeatureReplay,
    LabelledSource,
    Labels,
    sha256_of_files,
)
from models.events import Transfer
from models.features import Features
from models.feedback import FeedbackSource
from models.model import (
    GradientBoostedModel,
    TrainingParams,
    fit_classifier,
    importance_sample,
    negative_medians,
    probe_importance,
    unknown_everywhere,
)
from models.scorer import Scorer

MODEL_NAME = "fraudwatch-gbt"

# Share of accounts whose incoming money training never marks (see `PartlyMarkingScorer`).
UNMARKED_PAYEE_SHARE = 0.5


@dataclass
class TrainingSet:
    """Model-feature rows with labels, and the files they came from."""

    matrix: np.ndarray
    labels: np.ndarray
    files: list[Path]
    feedback_rows: int = 0
    views: list[str] = field(default_factory=lambda: ["all"])
    seeds: list[int] = field(default_factory=list)  # of simulated datasets (never evaluate on)
    # Whose alerts marked the money in the replays (the taint features depend on it).
    taint_marked_by: dict[str, Any] = field(default_factory=dict)


# Every training directory is replayed in each of these profile views: with the profiles it
# has, with one bank's, with none, and with a random half of the accounts' (dropped whole,
# independently of the label). Whether a profile is there then says nothing about fraud, and
# one model serves every deployment, from a bank's partial view to a centre with none.
TRAINING_VIEWS: tuple[str, ...] = (*PROFILE_COVERAGES, "random")
_RANDOM_KEEP_SHARE = 0.5


def load_training_set(
    directories: Sequence[Path],
    replay_features: FeatureReplay,
    views: Sequence[str] = TRAINING_VIEWS,
    seed: int = 7,
) -> TrainingSet:
    """Replay each labelled directory in each profile view (each from empty state) and stack
    the rows."""
    matrices, labels, files, seeds = [], [], [], []
    for number, directory in enumerate(directories):
        source = LabelledSource(directory, replay_features)
        if source.labels.seed is not None:
            seeds.append(source.labels.seed)
        for view in views:
            profiles = (
                random_profiles(source.profiles, source.banks, _RANDOM_KEEP_SHARE, seed + number)
                if view == "random"
                else source.view(view)
            )
            data = source.replay(profiles)
            matrices.append(data.table.columns())
            labels.append(data.y)
        files.extend(source.files.paths)
    return TrainingSet(
        np.vstack(matrices), np.concatenate(labels), files, views=list(views), seeds=seeds
    )


def check_marker_unseen(marker: Mapping[str, Any], directories: Sequence[Path]) -> None:
    """Refuse to mark training data with the alerts of a model that learnt that data (raise
    `ValueError` naming the directory).

    On the transfers it was trained on, a model's alerts are far truer than in service: in
    the replays of its own training seeds (101-103, four profile views) `s7-0bd2ccce`'s marks
    reached the payers of 34 of 2.5 million legitimate transfers, on seeds it never saw
    (104-106) of 231. A model trained on such marks learns that money an alert flagged is
    always fraud, and in service flags the customers a false alarm paid when they spend it.
    """
    learnt = marker.get("training_data", {})
    seeds = set(learnt.get("simulation_seeds") or ())
    digests = set(learnt.get("transfers_sha256") or ())
    for directory in directories:
        files = DataFiles.of(directory)
        seed = Labels.load(files.labels).seed if files.labels else None
        if seed in seeds or sha256_of_files([files.transfers]) in digests:
            raise ValueError(
                f"{directory}: the marking model {marker.get('name')} {marker.get('version')} "
                "was trained on this data, so its alerts here are truer than any it raises in "
                "service and the taint features would be learnt from them; train on data it "
                "has not seen, or mark with a model that has not (--marked-by)"
            )


class PartlyMarkingScorer(Scorer):
    """The scorer that marks money during a training replay, blind to a fixed random share
    of payee accounts: payments into them raise no alert, so no mark reaches them.

    Marks come from the alerts of the model being replaced. Trained on those alone, a model
    learns that a mule whose incoming money did not alert (a ring whose first hop was
    missed, or one seen for the first time) is ordinary. With half of the accounts never
    marked, every fraud shape also appears without taint upstream, and taint only adds.
    """

    def __init__(self, scorer: Scorer, unmarked_share: float, seed: int) -> None:
        super().__init__(scorer.rules, scorer.bands, scorer.model, scorer.model_weight,
                         scorer.rates, scorer.local_zone)
        self._unmarked_below = int(unmarked_share * 2**64)
        self._salt = f"{seed}:".encode()

    def unmarked(self, account: str) -> bool:
        """Whether no money paid into `account` is marked (fixed per account and seed)."""
        digest = hashlib.blake2b(self._salt + account.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self._unmarked_below

    def alerts(
        self, transfers: Sequence[Transfer], features: Sequence[Features], created_at: str
    ) -> list[Alert | None]:
        """The scorer's alerts, less those on payments into unmarked accounts."""
        return [
            None if alert is None or self.unmarked(transfer.dst_account) else alert
            for transfer, alert in zip(
                transfers, super().alerts(transfers, features, created_at), strict=True
            )
        ]


def add_feedback(
    training: TrainingSet, feedback: FeedbackSource, replay_features: FeatureReplay
) -> str:
    """Append the feedback transfers, replayed in event-time order; return their sha256.

    Feedback transfers are replayed on their own: their features see each other but not the
    simulated history (which is a different bank's traffic).
    """
    pairs = sorted(feedback, key=lambda pair: str(pair[0].get("ts", "")))
    lines = [orjson.dumps(transfer, option=orjson.OPT_SORT_KEYS) for transfer, _ in pairs]
    digest = hashlib.sha256(b"\n".join(lines) + repr([lab for _, lab in pairs]).encode())
    if not pairs:
        return digest.hexdigest()
    label_of = {str(t.get("transfer_id")): label for t, label in pairs}
    table = replay_features(lines, ())
    training.matrix = np.vstack([training.matrix, table.columns()])
    labels = np.fromiter((label_of[tid] for tid in table.transfer_ids), dtype=np.int8)
    training.labels = np.concatenate([training.labels, labels])
    training.feedback_rows = len(labels)
    return digest.hexdigest()


def prediction_fingerprint(model: GradientBoostedModel, matrix: np.ndarray) -> str:
    """sha256 of the rounded probabilities on `matrix`: equal for a faithful re-training."""
    rounded = np.round(model.probabilities(matrix), 10)
    return hashlib.sha256(rounded.tobytes()).hexdigest()


def train_model(
    training: TrainingSet,
    seeds: int | Sequence[int],
    params: TrainingParams | None = None,
    *,
    name: str = MODEL_NAME,
    version: str | None = None,
    feedback_sha256: str | None = None,
) -> tuple[GradientBoostedModel, dict[str, Any]]:
    """Fit, calibrate and prepare explanations; return the model and its metadata. Several
    `seeds` average one fit per seed; the first also draws the importance sample."""
    fit_seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    seed = fit_seeds[0]
    params = params or TrainingParams()
    if training.labels.min(initial=1) == training.labels.max(initial=0):
        raise ValueError("training data needs both fraudulent and legitimate transfers")
    data_sha256 = sha256_of_files(training.files)
    classifier = fit_classifier(training.matrix, training.labels, fit_seeds, params)
    baseline = negative_medians(training.matrix, training.labels)
    sample = training.matrix[importance_sample(training.labels, seed)]
    importance = probe_importance(classifier, sample, baseline)
    # The same data under other features or parameters, or marked by another scorer, is another
    # model: the version hashes all four.
    marking = orjson.dumps(training.taint_marked_by, option=orjson.OPT_SORT_KEYS).decode()
    parameters = orjson.dumps(params.as_dict(), option=orjson.OPT_SORT_KEYS).decode()
    digest = hashlib.sha256(
        "\n".join([data_sha256, *MODEL_FEATURES, marking, parameters]).encode()
    )
    digest_hex = digest.hexdigest()
    seeds_tag = "+".join(map(str, fit_seeds))
    model = GradientBoostedModel(
        name, version or f"s{seeds_tag}-{digest_hex[:8]}", classifier, baseline
    )
    metadata: dict[str, Any] = {
        "seed": seed,
        "fit_seeds": fit_seeds,
        "parameters": params.as_dict(),
        "training_data": {
            "files": [f"{p.parent.name}/{p.name}" for p in training.files],
            "sha256": data_sha256,
            "rows": len(training.labels),
            "positives": int(training.labels.sum()),
            "profile_views": training.views,
            "simulation_seeds": training.seeds,
            # Each transfers file's own digest: a later training refuses this model as the
            # marker of data it learnt (`check_marker_unseen`).
            "transfers_sha256": [
                sha256_of_files([p]) for p in training.files if p.name in TRANSFER_FILES
            ],
            "feedback_rows": training.feedback_rows,
            "feedback_sha256": feedback_sha256,
        },
        "taint_marked_by": training.taint_marked_by,
        "importance": dict(zip(MODEL_FEATURES, importance, strict=True)),
        "unlearned_features": [MODEL_FEATURES[c] for c in unknown_everywhere(training.matrix)],
        "prediction_fingerprint": prediction_fingerprint(model, sample),
        "libraries": {
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "skops": skops.__version__,
        },
    }
    return model, metadata
