"""How well cases gather what an investigator decides together, on labelled history. Pure.

A fraud case is a case holding at least one alert on a fraudulent transfer. Figures:
- alerts per case, overall and for fraud cases (how much one decision covers);
- rings whose alerted transfers all sit in one case (one view of the ring's money), of the
  rings with at least one alert;
- fraud cases holding legitimate alerts too, and fraud cases spanning several rings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CaseFigures:
    """Case figures of one dataset."""

    alerts: int
    cases: int
    alerts_per_case: float
    fraud_cases: int
    alerts_per_fraud_case: float
    rings_alerted: int
    rings_in_one_case: int
    rings_in_one_case_share: float
    fraud_cases_with_legitimate_alerts: int
    fraud_cases_with_several_rings: int


def case_figures(
    alert_cases: Iterable[tuple[str, str]], ring_of: Mapping[str, str]
) -> CaseFigures:
    """From (transfer id, case id) of every alert and the ring of each fraudulent transfer."""
    cases: dict[str, list[str]] = defaultdict(list)
    for transfer_id, case_id in alert_cases:
        cases[case_id].append(transfer_id)
    rings: dict[str, set[str]] = defaultdict(set)
    fraud = 0
    fraud_alerts = 0
    mixed = 0
    several = 0
    for case_id, transfers in cases.items():
        case_rings = {ring_of[t] for t in transfers if t in ring_of}
        for ring in case_rings:
            rings[ring].add(case_id)
        if case_rings:
            fraud += 1
            fraud_alerts += len(transfers)
            mixed += any(t not in ring_of for t in transfers)
            several += len(case_rings) > 1
    alerts = sum(len(t) for t in cases.values())
    single = sum(1 for held in rings.values() if len(held) == 1)
    return CaseFigures(
        alerts=alerts,
        cases=len(cases),
        alerts_per_case=round(alerts / len(cases), 2) if cases else 0.0,
        fraud_cases=fraud,
        alerts_per_fraud_case=round(fraud_alerts / fraud, 2) if fraud else 0.0,
        rings_alerted=len(rings),
        rings_in_one_case=single,
        rings_in_one_case_share=round(single / len(rings), 4) if rings else 0.0,
        fraud_cases_with_legitimate_alerts=mixed,
        fraud_cases_with_several_rings=several,
    )
