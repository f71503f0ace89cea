"""The trained transfer model: calibrated gradient-boosted trees over `MODEL_FEATURES`.

`GradientBoostedModel` is the scorer's `TransferModel`: it scores a batch in one call of its
compiled forest (`models.forest`) and explains each score by its strongest features. The
explanation is a cheap attribution: for the few globally most important features, how much
the log-odds drop when that feature alone is set to a typical legitimate value (its training
median among negatives). The probes are stacked under the batch so that the whole batch,
probes included, is still one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import ThreadpoolController

from models.alerts import Reason
from models.dataset import MODEL_FEATURES, feature_matrix
from models.features import FEATURE_DESCRIPTIONS, Features, feature_party
from models.forest import CalibratedForest
from rules.compile import evidence_value

EVIDENCE_FEATURES = 3  # features an alert's model reason shows
PROBE_FEATURES = 8  # features probed per transfer to find those three
_EPSILON = 1e-6  # keeps log-odds finite at probabilities 0 and 1
# One OpenMP thread: on a shared or busy host, the trees' thread pool spin-waits against other
# processes and runs ~20x slower; workers scale out by process instead.
_THREADS = 1
_THREADPOOLS = ThreadpoolController()  # found once: each lookup walks the loaded libraries


@dataclass(frozen=True)
class TrainingParams:
    """Hyper-parameters of the classifier and its calibration (recorded in the artifact)."""

    max_iter: int = 120
    learning_rate: float = 0.1
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 30
    l2_regularization: float = 1.0
    calibration: str = "sigmoid"
    calibration_folds: int = 3
    # Share of rows copied once without profile facts and once without device/phone/IP facts.
    missing_context_share: float = 0.3

    def as_dict(self) -> dict[str, object]:
        """The parameters as a JSON-ready dict."""
        return asdict(self)


def fit_classifier(
    matrix: np.ndarray, labels: np.ndarray, seed: int, params: TrainingParams
) -> CalibratedClassifierCV:
    """Fit boosted trees on folds and calibrate each on its held-out fold (deterministic)."""
    trees = HistGradientBoostingClassifier(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        early_stopping=False,
        random_state=seed,
    )
    folds = StratifiedKFold(params.calibration_folds, shuffle=True, random_state=seed)
    calibrated = CalibratedClassifierCV(trees, method=params.calibration, cv=folds)
    rows, targets = with_missing_context(matrix, labels, seed, params.missing_context_share)
    with _THREADPOOLS.limit(limits=_THREADS, user_api="openmp"):
        return calibrated.fit(rows, targets)


# Context a bank may not send: account profiles are an optional topic, and device, phone and IP
# are optional transfer fields. Behaviour (flows, dwell, fan-in/out) is always there.
PROFILE_FEATURES = (
    "src_account_age_days",
    "src_holder_age",
    "src_is_business",
    "dst_account_age_days",
    "dst_holder_age",
    "dst_is_business",
)
ENTITY_FEATURES = ("device_accounts_7d", "phone_accounts_7d", "ip_accounts_7d")


def with_missing_context(
    matrix: np.ndarray, labels: np.ndarray, seed: int, share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Append copies of a random `share` of rows with profile facts, and of another with entity
    facts, set to NaN: without them, a model trained where every account has a profile learns
    to lean on the profile and misses plain behavioural patterns when a bank sends none."""
    rng = np.random.default_rng(seed)
    blocks, targets = [matrix], [labels]
    for names in (PROFILE_FEATURES, ENTITY_FEATURES):
        rows = np.flatnonzero(rng.random(len(labels)) < share)
        copy = matrix[rows].copy()
        copy[:, [MODEL_FEATURES.index(name) for name in names]] = np.nan
        blocks.append(copy)
        targets.append(labels[rows])
    return np.vstack(blocks), np.concatenate(targets)


def _log_odds(probability: np.ndarray) -> np.ndarray:
    clipped = np.clip(probability, _EPSILON, 1 - _EPSILON)
    return np.log(clipped / (1 - clipped))


class GradientBoostedModel:
    """A fitted classifier with what it needs to explain its scores."""

    def __init__(
        self,
        name: str,
        version: str,
        classifier: CalibratedClassifierCV,
        baseline: Sequence[float],
        importance: Sequence[float],
    ) -> None:
        self.name = name
        self.version = version
        self.classifier = classifier
        self.forest = CalibratedForest(classifier)
        self.baseline = np.asarray(baseline, dtype=np.float64)
        order = np.argsort(-np.asarray(importance, dtype=np.float64), kind="stable")
        self.probes = order[:PROBE_FEATURES]

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Fraud probability of each row of a `MODEL_FEATURES` matrix."""
        if len(matrix) == 0:
            return np.empty(0)
        return self.forest.probabilities(matrix)

    def contributions(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities, and for each row the log-odds each probed feature adds (rows × probes).

        One forest call covers the rows and every probe of every row.
        """
        n = len(matrix)
        stacked = np.tile(matrix, (len(self.probes) + 1, 1))
        for k, column in enumerate(self.probes, start=1):
            stacked[k * n : (k + 1) * n, column] = self.baseline[column]
        probability = self.probabilities(stacked)
        odds = _log_odds(probability).reshape(len(self.probes) + 1, n)
        return probability[:n], (odds[0] - odds[1:]).T

    def probability_batch(self, features: Sequence[Features]) -> list[float]:
        """Fraud probability of each transfer, in one vectorised call."""
        if not features:
            return []
        probabilities: list[float] = self.probabilities(feature_matrix(features)).tolist()
        return probabilities

    def explain_batch(self, features: Sequence[Features]) -> list[tuple[float, Reason]]:
        """Probability and `model` reason (top features as evidence) for each transfer."""
        if not features:
            return []
        matrix = feature_matrix(features)
        probability, contribution = self.contributions(matrix)
        title = f"Model: {self.name} {self.version}"
        explained = []
        for row, p, pushes in zip(matrix, probability.tolist(), contribution, strict=True):
            top = [self.probes[k] for k in np.argsort(-pushes, kind="stable")[:EVIDENCE_FEATURES]]
            evidence = {MODEL_FEATURES[c]: evidence_value(row[c]) for c in top}
            summary = f"fraud probability {p:.0%}; strongest signals: " + ", ".join(
                FEATURE_DESCRIPTIONS.get(MODEL_FEATURES[c], MODEL_FEATURES[c]) for c in top
            )
            # The account the model suspects: the one its strongest signal is about.
            suspect = feature_party(MODEL_FEATURES[top[0]])
            reason = Reason("model", title, evidence, score=round(p, 4), summary=summary,
                            suspect=suspect)  # fmt: skip
            explained.append((p, reason))
        return explained


def negative_medians(matrix: np.ndarray, labels: np.ndarray) -> list[float]:
    """Per-feature median among legitimate rows: the 'typical' value probes substitute."""
    negatives = matrix[labels == 0]
    medians = []
    for column in negatives.T:
        known = column[~np.isnan(column)]
        medians.append(float(np.median(known)) if known.size else float("nan"))
    return medians


def probe_importance(
    classifier: CalibratedClassifierCV, matrix: np.ndarray, baseline: Sequence[float]
) -> list[float]:
    """Mean absolute log-odds change when each feature is set to its baseline (on `matrix`)."""
    every = GradientBoostedModel("importance", "", classifier, baseline, [0.0] * len(baseline))
    every.probes = np.arange(len(baseline))
    _, contribution = every.contributions(matrix)
    return np.abs(contribution).mean(axis=0).round(6).tolist()


def importance_sample(labels: np.ndarray, seed: int, size: int = 4000) -> np.ndarray:
    """Row indices for importance: every positive up to half of `size`, negatives for the rest."""
    rng = np.random.default_rng(seed)
    positives = np.flatnonzero(labels == 1)
    negatives = np.flatnonzero(labels == 0)
    positives = rng.choice(positives, min(len(positives), size // 2), replace=False)
    negatives = rng.choice(negatives, min(len(negatives), size - len(positives)), replace=False)
    return np.sort(np.concatenate([positives, negatives]))
