"""Scoring a labelled dataset and measuring rules alone, model alone and the combined score.

The scores are the service's own: `rules_score` over the rule hits, the model's calibrated
probability, and `combine` of the two; an alert is a score at or above the alert threshold.
Per typology, the figures are over that typology's fraudulent transfers plus every legitimate
transfer, so precision there counts every false alarm; the `layering` slice pools the five
laundering shapes the same way. A ring is detected when one of its fraudulent transfers
alerts, and its time to first alert runs in event time from its first fraudulent transfer.
Beside it, the time to a ring's second transfer: no system that waits for a ring's pattern to
show can alert sooner, only one that knows a party (a profile, a list) before the ring moves.
Each profile coverage condition (every profile, one bank's, none) is a replay of its own:
profiles change the features.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score

from models.dataset import LabelledData, LabelledSource, concatenate
from models.features import MS_PER_MINUTE
from models.model import GradientBoostedModel
from models.scorer import final_score
from rules.engine import RuleSet

SYSTEMS = ("rules", "model", "combined")
# The laundering shapes of the IBM AML typologies that move victims' money on after the first
# mule; evaluation pools them into one `layering` slice as well as giving each its own.
LAYERING_TYPOLOGIES = ("cycle", "scatter_gather", "gather_scatter", "bipartite", "stack")
LAYERING = "layering"
_BATCH = 5000


@dataclass(frozen=True)
class SystemScores:
    """Per-transfer scores of each system, aligned with the table's rows."""

    rules: np.ndarray
    model: np.ndarray | None
    combined: np.ndarray | None

    def of(self, system: str) -> np.ndarray | None:
        """The scores of one system by name."""
        return dict(rules=self.rules, model=self.model, combined=self.combined)[system]


def score_dataset(
    data: LabelledData, rules: RuleSet, model: GradientBoostedModel | None, model_weight: float
) -> SystemScores:
    """Score every transfer of a replayed dataset with the rules, the model and the blend."""
    table = data.table
    hits = [
        rules.evaluate(row)
        for start in range(0, len(table.transfer_ids), _BATCH)
        for row in table.rows(start, start + _BATCH)
    ]
    rule_scores = np.array([final_score(row_hits, None, model_weight) for row_hits in hits])
    if model is None:
        return SystemScores(rule_scores, None, None)
    probability = model.probabilities(table.columns(model.features))
    blended = np.array(
        [
            final_score(row_hits, float(p), model_weight)
            for row_hits, p in zip(hits, probability, strict=True)
        ]
    )
    return SystemScores(rule_scores, probability, blended)


@dataclass(frozen=True)
class Figures:
    """How one system did on one slice of the data."""

    transfers: int
    positives: int
    alerts: int
    precision: float
    recall: float
    f1: float
    pr_auc: float
    alert_rate: float
    rings: int
    rings_alerted: int
    median_minutes_to_first_alert: float | None
    # The same for every system: the earliest an alert can come that does not flag a ring's
    # first transfer (None in recordings made before it was measured).
    median_minutes_to_second_transfer: float | None = None
    # From the first transfer a ring's own account sent (its victims' payments come before) to
    # its first alert: how long the money moves unflagged once the ring moves it (None without
    # account roles in the labels, and in recordings made before it was measured).
    median_minutes_from_first_move_to_alert: float | None = None


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def minutes_to_first_alert(
    rings: Sequence[str], ts_ms: np.ndarray, alerted: np.ndarray
) -> tuple[int, list[float]]:
    """(number of rings, event-time minutes from each alerted ring's first fraud to its alert)."""
    first: dict[str, int] = {}
    first_alert: dict[str, int] = defaultdict(lambda: 2**62)
    for ring, ts, hit in zip(rings, ts_ms.tolist(), alerted.tolist(), strict=True):
        first[ring] = min(first.get(ring, ts), ts)
        if hit:
            first_alert[ring] = min(first_alert[ring], ts)
    delays = [(first_alert[r] - first[r]) / MS_PER_MINUTE for r in first if r in first_alert]
    return len(first), delays


def minutes_to_second_transfer(rings: Sequence[str], ts_ms: np.ndarray) -> list[float]:
    """Event-time minutes from each ring's first fraudulent transfer to its second (rings of
    one transfer have none)."""
    times: dict[str, list[int]] = defaultdict(list)
    for ring, ts in zip(rings, ts_ms.tolist(), strict=True):
        times[ring].append(ts)
    return [(t[1] - t[0]) / MS_PER_MINUTE for t in map(sorted, times.values()) if len(t) > 1]


def minutes_from_first_move_to_alert(
    rings: Sequence[str], ts_ms: np.ndarray, moved: np.ndarray, alerted: np.ndarray
) -> list[float]:
    """Event-time minutes from each ring's first transfer that one of its own accounts sent
    (`moved`) to the ring's first alert, 0 where an alert came sooner; a ring that never moved
    money itself, or never alerted, has none."""
    first_move: dict[str, int] = {}
    first_alert: dict[str, int] = {}
    for ring, ts, move, hit in zip(rings, ts_ms.tolist(), moved.tolist(), alerted.tolist(),
                                   strict=True):  # fmt: skip
        if move:
            first_move[ring] = min(first_move.get(ring, ts), ts)
        if hit:
            first_alert[ring] = min(first_alert.get(ring, ts), ts)
    return [
        max(0, first_alert[ring] - ts) / MS_PER_MINUTE
        for ring, ts in first_move.items()
        if ring in first_alert
    ]


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 1) if values else None


def figures(
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    rings: Sequence[str],
    ts_ms: np.ndarray,
    moved: np.ndarray | None = None,
) -> Figures:
    """Figures of one system on one slice; `rings`, `ts_ms` and `moved` (sent by a ring's own
    account) are the positives' only."""
    alerted = scores >= threshold
    true_alerts = int((alerted & (y == 1)).sum())
    alerts, positives = int(alerted.sum()), int(y.sum())
    precision, recall = _ratio(true_alerts, alerts), _ratio(true_alerts, positives)
    # Fraud labelled without a ring (a bank's labels often name none) is no ring of its own.
    in_ring = np.fromiter((ring != "" for ring in rings), dtype=bool, count=len(rings))
    ring_ids = [ring for ring in rings if ring]
    ring_ts, ring_alerted = ts_ms[in_ring], alerted[y == 1][in_ring]
    ring_count, delays = minutes_to_first_alert(ring_ids, ring_ts, ring_alerted)
    return Figures(
        transfers=len(y),
        positives=positives,
        alerts=alerts,
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(_ratio(2 * precision * recall, precision + recall), 4),
        pr_auc=round(float(average_precision_score(y, scores)), 4) if positives else 0.0,
        alert_rate=round(_ratio(alerts, len(y)), 5),
        rings=ring_count,
        rings_alerted=len(delays),
        median_minutes_to_first_alert=_median(delays),
        median_minutes_to_second_transfer=_median(minutes_to_second_transfer(ring_ids, ring_ts)),
        median_minutes_from_first_move_to_alert=None
        if moved is None
        else _median(
            minutes_from_first_move_to_alert(ring_ids, ring_ts, moved[in_ring], ring_alerted)
        ),
    )


def evaluate(
    data: LabelledData, scores: SystemScores, threshold: float
) -> dict[str, dict[str, Figures]]:
    """Figures per slice ('overall', 'layering' when the data has any of its shapes, and each
    typology), then per system."""
    ids = data.table.transfer_ids
    typology = np.array([data.labels.typology.get(tid, "") for tid in ids])
    ring = np.array([data.labels.ring.get(tid, "") for tid in ids])
    # Which transfers the rings' own accounts sent, where the labels give account roles.
    moved = (
        np.fromiter((tid in data.labels.ring_moves for tid in ids), dtype=bool, count=len(ids))
        if data.labels.ring_accounts
        else None
    )
    legitimate = data.y == 0
    slices = {"overall": np.ones(len(ids), dtype=bool)}
    layering = np.isin(typology, LAYERING_TYPOLOGIES)
    if layering.any():
        slices[LAYERING] = layering | legitimate
    for name in sorted(set(typology.tolist()) - {""}):
        slices[name] = (typology == name) | legitimate
    result: dict[str, dict[str, Figures]] = {}
    for name, mask in slices.items():
        y = data.y[mask]
        positive = mask & (data.y == 1)
        result[name] = {
            system: figures(
                y,
                values[mask],
                threshold,
                ring[positive].tolist(),
                data.table.ts_ms[positive],
                None if moved is None else moved[positive],
            )
            for system in SYSTEMS
            if (values := scores.of(system)) is not None
        }
    return result


@dataclass(frozen=True)
class ConditionResult:
    """How every system did under one profile coverage condition."""

    coverage: str
    profiles: str  # what the condition gave, e.g. "own-bank (ICBC): profiles for 1,241 of ..."
    y: np.ndarray  # 1 for each fraudulent transfer (the feature tables are not kept)
    scores: SystemScores
    figures: dict[str, dict[str, Figures]]


def evaluate_conditions(
    sources: Sequence[LabelledSource],
    coverages: Sequence[str],
    rules: RuleSet,
    model: GradientBoostedModel | None,
    model_weight: float,
    threshold: float,
) -> list[ConditionResult]:
    """Replay the datasets (pooled) under each coverage condition and measure every system."""
    results = []
    for coverage in coverages:
        data = concatenate([source.replay(source.view(coverage)) for source in sources])
        scores = score_dataset(data, rules, model, model_weight)
        figures = evaluate(data, scores, threshold)
        results.append(ConditionResult(coverage, data.describe(), data.y, scores, figures))
    return results
