"""`fraudwatch train`, `evaluate` and `backtest`: the model's life cycle on recorded history."""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from service.settings import Settings

Runner = Callable[[argparse.Namespace], int]


def _friendly(run: Runner) -> Runner:
    """Report bad input (missing files, refused models, bad feedback) in one line, exit 2."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (FileNotFoundError, ValueError) as error:
            print(f"fraudwatch {args.command}: {error}", file=sys.stderr)
            return 2

    return guarded


def _train(args: argparse.Namespace) -> int:
    from models.feedback import JsonlFeedback
    from models.model import TrainingParams
    from models.registry import save_model
    from models.training import add_feedback, load_training_set, train_model
    from streams.replay import replay_features

    training = load_training_set(args.data, replay_features)
    feedback_sha256 = None
    if args.with_feedback:
        source = args.feedback_file or Settings().home / "feedback.jsonl"
        feedback_sha256 = add_feedback(training, JsonlFeedback(source), replay_features)
    model, metadata = train_model(
        training,
        args.seed,
        TrainingParams() if args.max_iter is None else TrainingParams(max_iter=args.max_iter),
        name=args.name,
        version=args.version,
        feedback_sha256=feedback_sha256,
    )
    if args.evaluate:
        metadata["evaluation"] = _evaluate_figures(model, args.evaluate)
    saved = save_model(args.out, model, metadata)
    data = saved["training_data"]
    print(
        f"trained {saved['name']} {saved['version']} on {data['rows']} transfers "
        f"({data['positives']} fraudulent, {data['feedback_rows']} from feedback)\n"
        f"wrote {args.out} ({saved['artifact_bytes']} bytes) and its metadata\n"
        f"prediction fingerprint {saved['prediction_fingerprint']}"
    )
    return 0


def _evaluate_figures(model: Any, directory: Path) -> dict[str, Any]:
    """Overall figures of each system on a held-out directory (recorded in the artifact)."""
    from models.dataset import load_labelled
    from models.evaluation import evaluate, score_dataset
    from service.wiring import load_rules
    from streams.replay import replay_features

    settings = Settings()
    data = load_labelled(directory, replay_features)
    scores = score_dataset(data, load_rules(settings), model, settings.model_weight)
    overall = evaluate(data, scores, settings.alert_threshold)["overall"]
    return {
        "dataset": directory.name,
        "threshold": settings.alert_threshold,
        "model_weight": settings.model_weight,
        **{system: vars(fig) for system, fig in overall.items()},
    }


def _evaluate(args: argparse.Namespace) -> int:
    from models.dataset import load_labelled
    from models.evaluation import evaluate, score_dataset
    from models.registry import load_model
    from models.report import figures_json, write_report
    from service.wiring import load_rules
    from streams.replay import replay_features

    settings = Settings()
    model_path = args.model or settings.model_path
    model = load_model(model_path) if model_path else None
    data = load_labelled(args.data_dir, replay_features)
    scores = score_dataset(data, load_rules(settings), model, settings.model_weight)
    results = evaluate(data, scores, settings.alert_threshold)
    context = {
        "dataset": str(args.data_dir),
        "model": f"{model.name} {model.version}" if model else "none",
        "alert_threshold": settings.alert_threshold,
        "model_weight": settings.model_weight,
        "transfers": len(data.y),
        "fraudulent": int(data.y.sum()),
    }
    if args.out:
        report = write_report(args.out, results, scores, data.y, context)
        print(f"wrote {report}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(figures_json(results, context), indent=2))
    else:
        _print_table(results)
    return 0


def _print_table(results: dict[str, Any]) -> None:
    header = f"{'slice':<20}{'system':<10}{'prec':>7}{'recall':>8}{'F1':>7}{'PR-AUC':>8}"
    print(header + f"{'alerts':>9}{'rings':>8}{'min→1st':>9}")
    for name, systems in results.items():
        for system, fig in systems.items():
            ttfa = fig.median_minutes_to_first_alert
            print(
                f"{name:<20}{system:<10}{fig.precision:>7.3f}{fig.recall:>8.3f}{fig.f1:>7.3f}"
                f"{fig.pr_auc:>8.3f}{fig.alert_rate:>9.2%}"
                f"{f'{fig.rings_alerted}/{fig.rings}':>8}{'–' if ttfa is None else ttfa:>9}"
            )


def _open_output(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        compressed = gzip.GzipFile(filename="", mode="wb", fileobj=path.open("wb"), mtime=0)
        return cast(BinaryIO, compressed)
    return path.open("wb")


def _backtest(args: argparse.Namespace) -> int:
    from models.jsonl import read_lines
    from service.wiring import build_scorer
    from streams.backtest import run_backtest

    for path in (args.input, args.accounts):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    scorer = build_scorer(Settings())
    profiles = read_lines(args.accounts) if args.accounts else ()
    args.alerts_out.parent.mkdir(parents=True, exist_ok=True)
    with _open_output(args.alerts_out) as out:
        summary = run_backtest(read_lines(args.input), profiles, scorer, out, args.batch_size)
    for line in summary.lines():
        print(line)
    print(f"alerts written to {args.alerts_out}")
    return 0


def register(subparsers: Any) -> None:
    """Add the `train`, `evaluate` and `backtest` commands."""
    train = subparsers.add_parser(
        "train",
        help="train the transfer model on labelled history",
        description="Replay labelled datasets, fit a calibrated model and write its artifact.",
    )
    train.add_argument(
        "--data",
        type=Path,
        action="append",
        required=True,
        metavar="DIR",
        help="a labelled dataset directory (repeatable)",
    )
    train.add_argument("--out", type=Path, required=True, help="model file to write (.skops)")
    train.add_argument("--seed", type=int, default=7, help="training seed (default 7)")
    train.add_argument("--name", default="fraudwatch-gbt", help="model name")
    train.add_argument(
        "--max-iter",
        type=int,
        help="boosting rounds (default: the standard setting recorded in the metadata)",
    )
    train.add_argument("--version", help="model version (default: seed and data hash)")
    train.add_argument(
        "--with-feedback", action="store_true", help="also learn from investigators' dispositions"
    )
    train.add_argument(
        "--feedback-file",
        type=Path,
        help="dispositions as JSON Lines (default: FRAUDWATCH_HOME/feedback.jsonl)",
    )
    train.add_argument(
        "--evaluate",
        type=Path,
        metavar="DIR",
        help="a held-out labelled dataset whose figures go into the metadata",
    )
    train.set_defaults(run=_friendly(_train))

    evaluate = subparsers.add_parser(
        "evaluate",
        help="measure rules, model and combined score on a labelled dataset",
        description="Precision, recall, F1, PR-AUC, alert rate and time to first alert, "
        "overall and per typology, for rules alone, model alone and combined.",
    )
    evaluate.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    evaluate.add_argument("--model", type=Path, help="model file (default: FRAUDWATCH_MODEL_PATH)")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument(
        "--out", type=Path, metavar="REPORT_DIR", help="write evaluation.md and pr_curves.png here"
    )
    evaluate.set_defaults(run=_friendly(_evaluate))

    backtest = subparsers.add_parser(
        "backtest",
        help="replay a transfers file through rules, features and model; write the alerts",
        description="No broker or Redis needed; raises the alerts the worker would raise for "
        "the same events in the same order (one partition).",
    )
    backtest.add_argument(
        "input",
        type=Path,
        metavar="INPUT",
        help="JSON Lines (plain or .gz) of transfers in event-time order",
    )
    backtest.add_argument("--alerts-out", type=Path, required=True, metavar="OUT.jsonl")
    backtest.add_argument(
        "--accounts",
        type=Path,
        metavar="ACCOUNTS.jsonl",
        help="account profiles, applied before the transfers",
    )
    backtest.add_argument("--batch-size", type=int, default=500, help=argparse.SUPPRESS)
    backtest.set_defaults(run=_friendly(_backtest))
