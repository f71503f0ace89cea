"""From features to a verdict: rule hits, the model's probability, the combined score.

One code path for the worker, `fraudwatch backtest` and pre-transfer screening, so that each
raises exactly the alerts the others would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Protocol

from models.alerts import SCORE_DIGITS, Alert, ModelVerdict, Reason, SeverityBands, build_alert
from models.currency import REFERENCE, ScoringRates
from models.events import Transfer
from models.features import Features
from rules.engine import RuleHit, RuleSet

# The model's share of the combined score; chosen on a held-out simulated seed (see
# `fraudwatch evaluate`) and configurable as FRAUDWATCH_MODEL_WEIGHT.
DEFAULT_MODEL_WEIGHT = 0.8


class TransferModel(Protocol):
    """A trained model that scores a batch of feature vectors in one vectorised call."""

    name: str
    version: str

    def probability_batch(self, features: Sequence[Features]) -> list[float]:
        """Fraud probability of each transfer (one vectorised call)."""
        ...

    def explain_batch(self, features: Sequence[Features]) -> list[tuple[float, Reason]]:
        """Fraud probability of each transfer and a `model` reason with its top features
        (dearer: it probes the model once per explained feature)."""
        ...


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on one transfer, alert or not."""

    score: float
    severity: str | None
    reasons: list[Reason]
    model: ModelVerdict | None
    hits: list[RuleHit]


def rules_score(hits: Sequence[RuleHit]) -> float:
    """Noisy-OR of the hits' contributions: independent pieces of evidence add up, below 1."""
    remaining = 1.0
    for hit in hits:
        remaining *= 1.0 - hit.score
    return 1.0 - remaining


def _reason_of(hit: RuleHit) -> Reason:
    return Reason(
        rule=hit.rule_id,
        title=hit.title,
        evidence=dict(hit.evidence),
        version=hit.version,
        score=round(hit.score, 4),
        summary=hit.summary or None,
        suspect=hit.suspect,
    )


class Scorer:
    """Scores batches of transfers with the rule set and, when there is one, the model."""

    def __init__(
        self,
        rules: RuleSet,
        bands: SeverityBands,
        model: TransferModel | None = None,
        model_weight: float = DEFAULT_MODEL_WEIGHT,
        rates: ScoringRates = REFERENCE,
        local_zone: tzinfo | None = None,
    ) -> None:
        self.rules = rules
        self.bands = bands
        self.model = model
        self.model_weight = model_weight
        # The model and rules are calibrated in the scoring currency: the rates that bring
        # every transfer's amount into it (`models.currency`).
        self.rates = rates
        # The model learnt the hour of day on the payer's clock: a feed in UTC needs the
        # bank's zone, or every hour would be read hours off (`models.events.parse_transfer`).
        self.local_zone = local_zone

    def assess(
        self, transfers: Sequence[Transfer], features: Sequence[Features]
    ) -> list[Assessment]:
        """A verdict for every transfer, in input order. The model's reason (its top features)
        is worked out only for the transfers that alert: explaining probes the model once per
        explained feature, and ~99 % of transfers raise nothing to explain."""
        probabilities: Sequence[float | None] = (
            self.model.probability_batch(features) if self.model else [None] * len(features)
        )
        scored = []
        for feature_row, probability in zip(features, probabilities, strict=True):
            hits = self.rules.evaluate(feature_row)
            scored.append((hits, final_score(hits, probability, self.model_weight)))
        explained: dict[int, Reason] = {}
        if self.model is not None:
            wanted = [
                index
                for index, (_, score) in enumerate(scored)
                if self.bands.severity(score) is not None
            ]
            if wanted:
                explanations = self.model.explain_batch([features[i] for i in wanted])
                explained = {i: reason for i, (_, reason) in zip(wanted, explanations, strict=True)}
        assessments = []
        for index, ((hits, score), probability) in enumerate(
            zip(scored, probabilities, strict=True)
        ):
            reasons = [_reason_of(hit) for hit in hits]
            verdict = None
            if probability is not None and self.model is not None:
                verdict = ModelVerdict(self.model.name, self.model.version, round(probability, 4))
                if index in explained:
                    reasons.append(explained[index])
                    reasons.sort(key=lambda reason: -(reason.score or 0.0))
            assessments.append(
                Assessment(score, self.bands.severity(score), reasons, verdict, hits)
            )
        return assessments

    def alerts(
        self, transfers: Sequence[Transfer], features: Sequence[Features], created_at: str
    ) -> list[Alert | None]:
        """The alert each transfer raises, or None where it stays below the threshold."""
        return [
            None
            if a.severity is None
            else build_alert(t, a.score, a.severity, a.reasons, a.model, created_at)
            for t, a in zip(transfers, self.assess(transfers, features), strict=True)
        ]


def final_score(
    hits: Sequence[RuleHit], model_probability: float | None, model_weight: float
) -> float:
    """A transfer's combined score: rules and model blended (rules alone without a model),
    raised to the highest `floor` among the hits (confirmed knowledge, precise rules), to the
    4 decimals an alert shows: its severity and whether it alerts are judged on that figure
    (0.79998 would show as 0.8 beside severity `medium`)."""
    score = rules_score(hits)
    if model_probability is not None:
        score = combine(score, model_probability, model_weight)
    floor = max((hit.floor for hit in hits if hit.floor is not None), default=0.0)
    return round(max(score, floor), SCORE_DIGITS)


def combine(
    rule_score: float, model_probability: float, model_weight: float = DEFAULT_MODEL_WEIGHT
) -> float:
    """Weighted mean of rule evidence and the calibrated model probability (both in 0..1).

    Unlike a noisy-OR, the model can hold back a rule that fires on a transfer it has learnt
    is ordinary, and a rule hit lifts a borderline model score over the threshold.
    """
    return model_weight * model_probability + (1.0 - model_weight) * rule_score
