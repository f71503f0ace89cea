"""`latest.md` (figures, parameters, machine, command) and `latest.png` (the two plots)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

_ROWS: tuple[tuple[str, str, str], ...] = (
    ("raw_read_tps", "raw read (consume + decode, no scoring)", "transfers/s"),
    ("pipeline_tps", "pipeline, cold start to last commit", "transfers/s"),
    ("pipeline_steady_tps", "pipeline, first to last commit", "transfers/s"),
    ("pipeline_vs_raw", "pipeline / raw read", "ratio"),
    ("pipeline_first_commit_s", "cold start to first commit", "s"),
    ("offered_rate", "latency phase: offered rate", "transfers/s"),
    ("achieved_rate", "latency phase: achieved rate", "transfers/s"),
    ("redis_roundtrips_per_transfer", "Redis round trips per transfer", ""),
    ("redis_roundtrips_per_batch", "Redis round trips per batch", ""),
    ("redis_commands_per_transfer", "Redis commands per transfer", ""),
    ("state_calls_resent_per_1k", "state calls sent again per 1,000 transfers", ""),
    ("redis_bytes_per_transfer", "Redis bytes (in + out) per transfer", "bytes"),
    ("transfers_per_batch", "transfers per batch", ""),
    ("cpu_s_per_1k", "worker CPU per 1,000 transfers (steady)", "s"),
    ("cpu_s_per_1k_with_startup", "worker CPU per 1,000 transfers (with start-up)", "s"),
    ("redis_cpu_s_per_1k", "Redis CPU per 1,000 transfers (every node)", "s"),
    ("redis_nodes", "Redis nodes (primaries)", ""),
    ("redis_keys_max_over_min", "keys on the fullest node / on the emptiest", "ratio"),
    ("broker_cpu_s_per_1k", "broker CPU per 1,000 transfers", "s"),
    ("machine_cpu_s_per_1k", "machine CPU per 1,000 transfers (every process)", "s"),
    ("machine_busy_cores", "cores busy during the pipeline run", "cores"),
    ("cpu_bound_tps", "throughput with every core busy at this CPU cost", "transfers/s"),
    ("worker_rss_max_mb", "worker resident memory, max", "MiB"),
    ("worker_rss_mb_by_progress", "worker resident memory at 10 / 50 / 100 % of the input", "MiB"),
    ("redis_memory_per_account_bytes", "Redis memory per active account", "bytes"),
    ("produce_tps", "pre-load produce rate", "transfers/s"),
    ("processed", "transfers with state applied", ""),
    ("lost", "lost", ""),
    ("duplicated", "duplicated", ""),
    ("redelivered", "redeliveries recognised (harmless)", ""),
    ("dlq", "dead letters", ""),
    ("alerts", "alerts (pipeline phase)", ""),
)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return " / ".join(_cell(v) for v in value.values())
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _latency_rows(latency: dict[str, Any], where: str) -> list[str]:
    """The percentile rows of one latency phase (`where` names it, "" for the default)."""
    rows = [
        f"| event → alert latency {name}{where} | {_cell(latency[name])} | ms |"
        for name in ("p50", "p95", "p99", "max")
    ]
    rows.append(f"| alerts measured{where or ' for latency'} | {_cell(latency['count'])} | |")
    return rows


def markdown(result: dict[str, Any]) -> str:
    """The report as Markdown."""
    latency = result["latency_ms"]
    lines = [
        "# fraudwatch load test — latest run",
        "",
        f"Command: `{result['command']}`  ",
        f"Started: {result['started_at']} · target: {result['target']} · "
        f"duration {result['wall_s']} s",
        "",
        "| figure | value | unit |",
        "|---|---:|---|",
    ]
    lines += [f"| {label} | {_cell(result.get(key))} | {unit} |" for key, label, unit in _ROWS]
    lines += _latency_rows(latency, "")
    near = result.get("latency_near_max_ms")
    if near:
        where = f" at {near['share_of_pipeline_tps']:.0%} of pipeline throughput"
        for name in ("offered", "achieved"):
            rate = _cell(near[f"{name}_rate"])
            lines.append(f"| latency phase{where}: {name} rate | {rate} | transfers/s |")
        lines += _latency_rows(near, where)
    for workers, tps in result["pipeline_tps_by_workers"].items():
        lines.append(f"| pipeline with {workers} worker(s) | {_cell(tps)} | transfers/s |")
    if len(result.get("redis_per_node", [])) > 1:
        lines += ["", "| Redis node | commands / 1,000 transfers | CPU s / 1,000 transfers | "
                  "bytes / transfer | keys |", "|---|---:|---:|---:|---:|"]  # fmt: skip
        lines += [
            f"| {n['node']} | {_cell(n['commands_per_1k'])} | {_cell(n['cpu_s_per_1k'])} | "
            f"{_cell(n['bytes_per_transfer'])} | {_cell(n['keys'])} |"
            for n in result["redis_per_node"]
        ]
    lines += [
        "",
        f"Latency: {result['latency_note']}.",
        "",
        f"Redis round trips: {result['redis_roundtrips_source']}.",
        "",
        "![throughput and latency](latest.png)",
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(result["parameters"], indent=2),
        "```",
        "",
        "## Machine",
        "",
        "```json",
        json.dumps(result["machine"], indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> bool:
    """Throughput over time and the latency percentiles; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    timeline = result["throughput_timeline"]
    times = [t for t, _ in timeline]
    rates = [0.0] + [
        (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
        for (t0, c0), (t1, c1) in itertools.pairwise(timeline)
    ]
    left.plot(times, rates, drawstyle="steps-pre")
    left.axhline(result["raw_read_tps"], linestyle="--", color="grey", label="raw read rate")
    left.set(title=f"Pipeline throughput, {result['parameters']['workers']} worker(s)",
             xlabel="seconds since cold start", ylabel="transfers committed / s")  # fmt: skip
    left.legend()
    names = ["p50", "p95", "p99", "max"]
    phases = [(f"{_cell(result['offered_rate'])}/s", result["latency_ms"])]
    if near := result.get("latency_near_max_ms"):
        phases.append((f"{_cell(near['offered_rate'])}/s", near))
    width = 0.8 / len(phases)
    for index, (label, latency) in enumerate(phases):
        right.bar(
            [i + index * width for i in range(len(names))],
            [latency[n] or 0 for n in names],
            width,
            label=f"{label} ({latency['count']} alerts)",
        )
    right.set_xticks([i + width * (len(phases) - 1) / 2 for i in range(len(names))], names)
    right.set(title="Event → alert latency by offered rate", ylabel="ms")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_report(result: dict[str, Any], directory: Path) -> tuple[Path, Path | None]:
    """Write latest.md and latest.png into `directory`; return both paths (PNG None if skipped)."""
    directory.mkdir(parents=True, exist_ok=True)
    md_path, png_path = directory / "latest.md", directory / "latest.png"
    md_path.write_text(markdown(result), encoding="utf-8")
    return md_path, (png_path if plot(result, png_path) else None)
