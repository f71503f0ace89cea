"""The evaluation report: per profile coverage condition, a Markdown table per slice, a PNG of
precision–recall curves, and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")  # no display: the report is written by servers and CI

import matplotlib.pyplot as plt
from sklearn.metrics import precision_recall_curve

from models.case_evaluation import CaseFigures
from models.evaluation import LAYERING, SYSTEMS, ConditionResult, Figures

PNG_NAME = "pr_curves.png"
MARKDOWN_NAME = "evaluation.md"
_COLUMNS = (
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("pr_auc", "PR-AUC"),
    ("alert_rate", "alert rate"),
    ("rings_alerted", "rings alerted"),
    ("median_minutes_to_first_alert", "median min to 1st alert"),
    ("median_minutes_to_second_transfer", "median min to a ring's 2nd transfer"),
    ("median_minutes_from_first_move_to_alert", "median min from a ring's 1st own move"),
)
_LABELS = dict(_COLUMNS)


def figures_json(conditions: Sequence[ConditionResult], context: dict[str, Any]) -> dict[str, Any]:
    """Everything as plain JSON: the context (dataset, model, threshold) and, per profile
    coverage condition, what it profiled and the figures of every slice and system."""
    return {
        **context,
        "conditions": {
            result.coverage: {
                "profiles": result.profiles,
                "transfers": len(result.y),
                "fraudulent": int(result.y.sum()),
                "slices": {
                    name: {system: asdict(fig) for system, fig in systems.items()}
                    for name, systems in result.figures.items()
                },
            }
            for result in conditions
        },
    }


def _cell(fig: Figures, field: str) -> str:
    value = getattr(fig, field)
    if value is None:
        return "–"
    if field == "rings_alerted":
        return f"{value}/{fig.rings}"
    if field == "alert_rate":
        return f"{value:.2%}"
    if field.startswith("median_minutes"):
        return f"{value:.1f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


class Measured(Protocol):
    """Figures of one profile coverage condition: per slice, then per system."""

    @property
    def coverage(self) -> str: ...

    @property
    def figures(self) -> dict[str, dict[str, Figures]]: ...


@dataclass(frozen=True)
class RecordedCondition:
    """The figures of one condition as an earlier `evaluate --json` recorded them."""

    coverage: str
    figures: dict[str, dict[str, Figures]]


def recorded_conditions(doc: dict[str, Any]) -> list[RecordedCondition]:
    """The conditions of an earlier `evaluate --json` output (raises `ValueError` if it is
    not one)."""
    try:
        return [
            RecordedCondition(
                coverage,
                {
                    name: {system: Figures(**fig) for system, fig in systems.items()}
                    for name, systems in condition["slices"].items()
                },
            )
            for coverage, condition in doc["conditions"].items()
        ]
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not the JSON of `fraudwatch evaluate --json`: {error!r}") from None


def compared_rows(
    before: Sequence[Measured], after: Sequence[Measured], system: str
) -> list[list[str]]:
    """`summary_rows` of the conditions both measured, each cell `before → after` (columns as
    `summary_header(after)`; a slice one of them lacks reads `–`)."""
    earlier = {row[0]: row for row in summary_rows(before, system, _typologies(after))}
    return [
        [row[0], *(f"{old} → {new}" for old, new in zip(earlier[row[0]][1:], row[1:], strict=True))]
        for row in summary_rows(after, system)
        if row[0] in earlier
    ]


def summary_rows(
    conditions: Sequence[Measured], system: str, slices: Sequence[str] | None = None
) -> list[list[str]]:
    """One row per condition: precision, recall, F1, alert rate, rings alerted and the median
    minutes to a ring's first alert of `system`, then its recall on the pooled layering shapes
    and on each typology, or on `slices` (columns as `summary_header`)."""
    typologies = _typologies(conditions) if slices is None else list(slices)
    rows = []
    for result in conditions:
        overall = result.figures["overall"].get(system)
        if overall is None:
            continue
        per_typology = [
            _cell(result.figures[name][system], "recall")
            if system in result.figures.get(name, {})
            else "–"
            for name in typologies
        ]
        rows.append(
            [
                result.coverage,
                *(_cell(overall, field) for field in _SUMMARY_FIELDS),
                *per_typology,
            ]
        )
    return rows


def summary_header(conditions: Sequence[Measured]) -> list[str]:
    """Column names of `summary_rows`."""
    return ["coverage", *(_LABELS[field] for field in _SUMMARY_FIELDS),
            *(f"recall {name}" for name in _typologies(conditions))]  # fmt: skip


_SUMMARY_FIELDS = ("precision", "recall", "f1", "alert_rate", "rings_alerted",
                   "median_minutes_to_first_alert", "median_minutes_to_second_transfer",
                   "median_minutes_from_first_move_to_alert")  # fmt: skip


def _typologies(conditions: Sequence[Measured]) -> list[str]:
    """The slices after 'overall': the pooled layering shapes first, then each typology."""
    names = sorted({name for r in conditions for name in r.figures} - {"overall"})
    return sorted(names, key=lambda name: name != LAYERING)


def markdown(conditions: Sequence[ConditionResult], context: dict[str, Any]) -> str:
    """The report as Markdown: a summary per condition, then one table per condition and
    slice, systems side by side."""
    lines = ["# fraudwatch evaluation", ""]
    lines += [f"- **{key}**: {value}" for key, value in context.items()]
    lines += [f"- **profiles, {r.coverage}**: {r.profiles}" for r in conditions]
    lines += [
        "",
        "An alert is a score at or above the alert threshold. A typology's slice is its "
        "fraudulent transfers plus every legitimate one (`layering` pools cycle, "
        "scatter-gather, gather-scatter, bipartite and stack); a ring is alerted when one of "
        "its fraudulent transfers is; time to first alert is event time "
        "from a ring's first fraudulent transfer to its first alerted one; no alert that "
        "waits for a ring's pattern comes before its second transfer; a ring's 1st own "
        "move is the first transfer one of its own accounts sent (its victims' payments "
        "come before), where the labels give account roles. Each profile "
        "coverage condition replays the data with that view's profiles only.",
        "",
        "## Summary (combined score)",
        "",
        "| " + " | ".join(summary_header(conditions)) + " |",
        "|---" * len(summary_header(conditions)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(conditions, "combined")]
    lines += ["", f"![precision–recall curves]({PNG_NAME})"]
    for result in conditions:
        for name, systems in result.figures.items():
            present = [s for s in SYSTEMS if s in systems]
            lines += ["", f"## {result.coverage}: {name}", "", "| | " + " | ".join(present) + " |"]
            lines.append("|---" * (len(present) + 1) + "|")
            for field, label in _COLUMNS:
                cells = [_cell(systems[s], field) for s in present]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_pr_curves(conditions: Sequence[ConditionResult], path: Path) -> None:
    """Precision–recall curves of every system, one chart per condition, as one PNG."""
    figure, axes_row = plt.subplots(
        1, len(conditions), figsize=(5 * len(conditions), 4.5), dpi=110, squeeze=False
    )
    for axes, result in zip(axes_row[0], conditions, strict=True):
        for system in SYSTEMS:
            values = result.scores.of(system)
            if values is None:
                continue
            precision, recall, _ = precision_recall_curve(result.y, values)
            axes.plot(recall, precision, label=system, drawstyle="steps-post")
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
        axes.set_xlim(0, 1.01)
        axes.set_ylim(0, 1.01)
        axes.set_title(f"profiles: {result.coverage}")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def cases_markdown(cases: CaseFigures) -> str:
    """The case figures as a Markdown section."""
    return "\n".join([
        "", "## cases", "",
        "Alerts grouped as the worker groups them; a fraud case holds at least one alert on a "
        "fraudulent transfer, a ring is in one case when all its alerted transfers are.", "",
        "| | |", "|---|---|",
        f"| cases (alerts) | {cases.cases} ({cases.alerts}) |",
        f"| alerts per case | {cases.alerts_per_case} |",
        f"| fraud cases | {cases.fraud_cases} |",
        f"| alerts per fraud case | {cases.alerts_per_fraud_case} |",
        f"| rings in one case | {cases.rings_in_one_case}/{cases.rings_alerted} "
        f"({cases.rings_in_one_case_share:.0%}) |",
        f"| fraud cases with legitimate alerts too | {cases.fraud_cases_with_legitimate_alerts} |",
        f"| fraud cases with several rings | {cases.fraud_cases_with_several_rings} |",
    ]) + "\n"  # fmt: skip


def write_report(
    out_dir: Path,
    conditions: Sequence[ConditionResult],
    context: dict[str, Any],
    cases: CaseFigures | None = None,
) -> Path:
    """Write the Markdown report (with the case figures, when given) and the PNG into
    `out_dir`; return the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_pr_curves(conditions, out_dir / PNG_NAME)
    report = out_dir / MARKDOWN_NAME
    text = markdown(conditions, context) + (cases_markdown(cases) if cases else "")
    report.write_text(text, encoding="utf-8")
    return report
