"""The evaluation report: a Markdown table per slice, a PNG of precision–recall curves, JSON."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is written by servers and CI

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve

from models.case_evaluation import CaseFigures
from models.evaluation import SYSTEMS, Figures, SystemScores

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
)


def figures_json(results: dict[str, dict[str, Figures]], context: dict[str, Any]) -> dict[str, Any]:
    """Everything as plain JSON: the context (dataset, model, threshold) and the figures."""
    return {
        **context,
        "slices": {
            name: {system: asdict(fig) for system, fig in systems.items()}
            for name, systems in results.items()
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
    if field == "median_minutes_to_first_alert":
        return f"{value:.1f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(results: dict[str, dict[str, Figures]], context: dict[str, Any]) -> str:
    """The report as Markdown: one table per slice, systems side by side."""
    lines = ["# fraudwatch evaluation", ""]
    lines += [f"- **{key}**: {value}" for key, value in context.items()]
    lines += [
        "",
        "An alert is a score at or above the alert threshold. A typology's slice is its "
        "fraudulent transfers plus every legitimate one; time to first alert is event time "
        "from a ring's first fraudulent transfer to its first alerted one.",
        "",
        f"![precision–recall curves]({PNG_NAME})",
    ]
    for name, systems in results.items():
        present = [s for s in SYSTEMS if s in systems]
        lines += ["", f"## {name}", "", "| | " + " | ".join(present) + " |"]
        lines.append("|---" * (len(present) + 1) + "|")
        for field, label in _COLUMNS:
            cells = [_cell(systems[s], field) for s in present]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_pr_curves(y: np.ndarray, scores: SystemScores, path: Path) -> None:
    """Precision–recall curves of every system on one chart, written as a PNG."""
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=110)
    for system in SYSTEMS:
        values = scores.of(system)
        if values is None:
            continue
        precision, recall, _ = precision_recall_curve(y, values)
        axes.plot(recall, precision, label=system, drawstyle="steps-post")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1.01)
    axes.set_ylim(0, 1.01)
    axes.set_title("Precision–recall, all transfers")
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
    results: dict[str, dict[str, Figures]],
    scores: SystemScores,
    y: np.ndarray,
    context: dict[str, Any],
    cases: CaseFigures | None = None,
) -> Path:
    """Write the Markdown report (with the case figures, when given) and the PNG into
    `out_dir`; return the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_pr_curves(y, scores, out_dir / PNG_NAME)
    report = out_dir / MARKDOWN_NAME
    text = markdown(results, context) + (cases_markdown(cases) if cases else "")
    report.write_text(text, encoding="utf-8")
    return report
