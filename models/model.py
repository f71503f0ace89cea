"""The trained transfer model: calibrated gradient-boosted trees over `MODEL_FEATURES`.

`GradientBoostedModel` is the scorer's `TransferModel`: it scores a batch in one call of its
compiled forest (`models.forest`) and explains each score by its strongest signals. The
explanation is a cheap attribution: for every feature, how much the log-odds move when that
feature alone is set to a typical legitimate value (its training median among negatives).
The probes are stacked under the batch so that the whole batch, probes included, is still one
call; only alerting transfers are explained. A feature whose value is unknown is never shown:
an absent profile or history is not evidence.
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
from models.explanations import signal
from models.features import PAYER_OUTGOING_FEATURES, Features, Party, feature_party
from models.forest import CalibratedForest

EVIDENCE_FEATURES = 3  # signals an alert's model reason shows
# A signal that moves the log-odds less than this is noise, not a reason.
_MIN_PUSH = 0.05
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
    # Share of rows copied once without device/phone/IP facts (optional transfer fields);
    # profiles are absent in whole training views instead (`models.training.TRAINING_VIEWS`).
    missing_entity_share: float = 0.3
    # The fraud share the probabilities are calibrated to: fraudulent rows are weighted so
    # they make up this share, whatever share the training data had. Near what banks see, so
    # a calibrated 0.5 means an even chance in the stream the model will score.
    fraud_prior: float = 0.002
    # Features the score may only rise with. A mule's payouts add to its outgoing counts; left
    # free, the trees learnt that the tenth payout of a fan-out looks less like fraud than the
    # first (in training, ordinary payers with many payees outnumber rings that far along) and
    # the model overruled `fan_out_rapid` on a ring that kept paying out.
    score_rises_with: tuple[str, ...] = PAYER_OUTGOING_FEATURES

    def as_dict(self) -> dict[str, object]:
        """The parameters as a JSON-ready dict."""
        return asdict(self)


def fit_classifier(
    matrix: np.ndarray, labels: np.ndarray, seeds: Sequence[int], params: TrainingParams
) -> CalibratedClassifierCV:
    """Fit boosted trees on folds and calibrate each on its held-out fold, once per seed, and
    average them all (deterministic). With a few false alerts in 250,000 transfers, one fit's
    luck weighs as much as a feature; averaging fits of several seeds evens it out."""
    fits = [_fit_calibrated(matrix, labels, seed, params) for seed in seeds]
    merged = fits[0]
    # `predict_proba` is the mean over `calibrated_classifiers_`: one list holds every fold.
    merged.calibrated_classifiers_ = [c for fit in fits for c in fit.calibrated_classifiers_]
    return merged


def _fit_calibrated(
    matrix: np.ndarray, labels: np.ndarray, seed: int, params: TrainingParams
) -> CalibratedClassifierCV:
    trees = HistGradientBoostingClassifier(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        monotonic_cst=[1 if name in params.score_rises_with else 0 for name in MODEL_FEATURES],
        early_stopping=False,
        random_state=seed,
    )
    folds = StratifiedKFold(params.calibration_folds, shuffle=True, random_state=seed)
    calibrated = CalibratedClassifierCV(trees, method=params.calibration, cv=folds)
    rows, targets = with_missing_entities(matrix, labels, seed, params.missing_entity_share)
    # A feature unknown in every row (novelty in data shorter than the cold-start week) cannot
    # be learnt, and the trees' binning refuses an all-NaN column: a constant stands in, which
    # no split can use, so the model ignores the feature whatever value it later sees.
    rows[:, unknown_everywhere(rows)] = 0.0
    weights = prior_weights(targets, params.fraud_prior)
    with _THREADPOOLS.limit(limits=_THREADS, user_api="openmp"):
        return calibrated.fit(rows, targets, sample_weight=weights)


def unknown_everywhere(matrix: np.ndarray) -> np.ndarray:
    """Indices of the columns that are NaN in every row."""
    return np.flatnonzero(np.isnan(matrix).all(axis=0)) if len(matrix) else np.arange(0)


def prior_weights(labels: np.ndarray, fraud_prior: float) -> np.ndarray:
    """Row weights under which fraudulent rows make up `fraud_prior` of the total weight."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        return np.ones(len(labels))
    weight = fraud_prior * negatives / ((1.0 - fraud_prior) * positives)
    return np.where(labels == 1, weight, 1.0)


# Context a bank may not send: device, phone and IP are optional transfer fields. Behaviour
# (flows, dwell, fan-in/out) is always there.
ENTITY_FEATURES = ("src_devices_7d", "device_accounts_7d", "phone_accounts_7d", "ip_accounts_7d")


def with_missing_entities(
    matrix: np.ndarray, labels: np.ndarray, seed: int, share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Append copies of a random `share` of rows with the device, phone and IP facts set to
    NaN, so that a bank that sends none still gets the behavioural patterns detected."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(rng.random(len(labels)) < share)
    copy = matrix[rows].copy()
    copy[:, [MODEL_FEATURES.index(name) for name in ENTITY_FEATURES]] = np.nan
    return np.vstack([matrix, copy]), np.concatenate([labels, labels[rows]])


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
        features: Sequence[str] = MODEL_FEATURES,
    ) -> None:
        self.name = name
        self.version = version
        self.classifier = classifier
        # The features it was trained on, in its matrix's column order: `MODEL_FEATURES`, or
        # (a model of an earlier release, still serving while its successor trains) fewer.
        self.features = tuple(features)
        self.forest = CalibratedForest(classifier)
        self.against_payee = np.array([feature_party(name) == "payee" for name in self.features])
        self.baseline = np.asarray(baseline, dtype=np.float64)

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Fraud probability of each row of a matrix of its `features`."""
        if len(matrix) == 0:
            return np.empty(0)
        return self.forest.probabilities(matrix)

    def contributions(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities, and for each row the log-odds each feature adds over its baseline
        value (rows × features). One forest call covers the rows and every probe of every row.
        """
        n, width = matrix.shape
        stacked = np.tile(matrix, (width + 1, 1))
        for column in range(width):
            start = (column + 1) * n
            stacked[start : start + n, column] = self.baseline[column]
        probability = self.probabilities(stacked)
        odds = _log_odds(probability).reshape(width + 1, n)
        return probability[:n], (odds[0] - odds[1:]).T

    def probability_batch(self, features: Sequence[Features]) -> list[float]:
        """Fraud probability of each transfer, in one vectorised call."""
        if not features:
            return []
        matrix = feature_matrix(features, self.features)
        probabilities: list[float] = self.probabilities(matrix).tolist()
        return probabilities

    def explain_batch(self, features: Sequence[Features]) -> list[tuple[float, Reason]]:
        """Probability and `model` reason for each transfer: its strongest signals with known
        values, each with its value in words and whether it raised or lowered the score."""
        if not features:
            return []
        matrix = feature_matrix(features, self.features)
        probability, contribution = self.contributions(matrix)
        title = f"Model: {self.name} {self.version}"
        explained = []
        for row, p, pushes in zip(matrix, probability.tolist(), contribution, strict=True):
            known = np.flatnonzero(~np.isnan(row) & (np.abs(pushes) >= _MIN_PUSH))
            top = known[np.argsort(-np.abs(pushes[known]), kind="stable")][:EVIDENCE_FEATURES]
            top = top[np.argsort(-pushes[top], kind="stable")]  # what raised it first
            evidence = {self.features[c]: _plain(row[c]) for c in top}
            signals = [signal(self.features[c], row[c], pushes[c]) for c in top]
            summary = f"fraud probability {p:.0%}"
            if signals:
                summary += ": " + "; ".join(text for text in signals if text)
            suspect = suspected_party(self.against_payee, row, pushes)
            reason = Reason("model", title, evidence, score=round(p, 4), summary=summary,
                            suspect=suspect)  # fmt: skip
            explained.append((p, reason))
        return explained


def suspected_party(against_payee: np.ndarray, row: np.ndarray, pushes: np.ndarray) -> Party | None:
    """The party a model alert suspects: the one whose known signals raised the score more in
    sum (`against_payee` marks the features that are evidence against the payee), `None` when
    none raised it. Not the party of the single strongest signal: a mule's payout is large, so
    its amount alone points at the payee, while the payer's own signals (money that has just
    arrived, its outgoing counts) may together say more.
    """
    raised = np.where(~np.isnan(row) & (pushes >= _MIN_PUSH), pushes, 0.0)
    payee, payer = raised[against_payee].sum(), raised[~against_payee].sum()
    if payee == payer == 0.0:
        return None
    return "payee" if payee > payer else "payer"


def _plain(value: float) -> float | int:
    """A known feature value as JSON shows it: an int when integral."""
    return int(value) if float(value).is_integer() else float(value)


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
    _, contribution = GradientBoostedModel("", "", classifier, baseline).contributions(matrix)
    return np.abs(contribution).mean(axis=0).round(6).tolist()


def importance_sample(labels: np.ndarray, seed: int, size: int = 4000) -> np.ndarray:
    """Row indices for importance: every positive up to half of `size`, negatives for the rest."""
    rng = np.random.default_rng(seed)
    positives = np.flatnonzero(labels == 1)
    negatives = np.flatnonzero(labels == 0)
    positives = rng.choice(positives, min(len(positives), size // 2), replace=False)
    negatives = rng.choice(negatives, min(len(negatives), size - len(positives)), replace=False)
    return np.sort(np.concatenate([positives, negatives]))
