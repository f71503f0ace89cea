"""`fraudwatch train`, `evaluate` and `backtest`: the model's life cycle on recorded history."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from service.settings import Settings

if TYPE_CHECKING:
    from models.dataset import LabelledSource
    from models.report import RecordedCondition

Runner = Callable[[argparse.Namespace], int]


def friendly_errors(run: Runner) -> Runner:
    """Report bad input (missing files, refused models, bad feedback) in one line, exit 2."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (FileNotFoundError, ValueError) as error:
            print(f"fraudwatch {args.command}: {error}", file=sys.stderr)
            return 2

    return guarded


def _training_seed(value: str) -> int:
    """A seed the trees and folds accept, checked before the replays (which take the time)."""
    try:
        seed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError("must be at least 0 and below 2**32")
    return seed


def _train(args: argparse.Namespace) -> int:
    from models.artifact import read_metadata
    from models.feedback import JsonlFeedback
    from models.model import TrainingParams
    from models.registry import save_model
    from models.training import (
        UNMARKED_PAYEE_SHARE,
        PartlyMarkingScorer,
        add_feedback,
        check_marker_unseen,
        load_training_set,
        train_model,
    )
    from service.wiring import build_scorer
    from streams.replay import replay_features

    # The money the configured scorer (the model being replaced) alerts on is marked as the
    # worker marks it, so the taint features are learnt as they will be served; except the
    # money paid into a random half of the accounts, so that every shape is also learnt
    # without taint upstream.
    settings = Settings()
    if args.marked_by is not None:
        settings = settings.model_copy(update={"model_path": args.marked_by})
    if settings.model_path is not None:
        check_marker_unseen(read_metadata(settings.model_path), args.data)
    scorer = build_scorer(settings)
    seeds = args.seed or [7]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"--seed {seeds}: a seed given twice fits the same trees twice")
    marking = PartlyMarkingScorer(scorer, UNMARKED_PAYEE_SHARE, seeds[0])
    replay = partial(replay_features, scorer=marking)
    training = load_training_set(args.data, replay)
    training.taint_marked_by = {
        "scorer": f"{scorer.model.name} {scorer.model.version}" if scorer.model else "rules",
        "unmarked_payee_share": UNMARKED_PAYEE_SHARE,
    }
    feedback_sha256 = None
    if args.with_feedback:
        source = args.feedback_file or Settings().home / "feedback.jsonl"
        feedback_sha256 = add_feedback(training, JsonlFeedback(source), replay)
    model, metadata = train_model(
        training,
        seeds,
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
    if saved["unlearned_features"]:
        print(
            "features unknown in every training row, so not learnt: "
            + ", ".join(saved["unlearned_features"])
            + " (whether a payee is new is unknown in the first week of observation: "
            "train on more than a week of history)"
        )
    return 0


def _evaluate_figures(model: Any, directory: Path) -> dict[str, Any]:
    """Overall figures of each system on a held-out directory, per profile coverage condition
    (recorded in the artifact)."""
    from models.coverage import PROFILE_COVERAGES
    from models.dataset import LabelledSource
    from models.evaluation import evaluate_conditions
    from service.wiring import build_scorer, load_rules
    from streams.replay import replay_features

    settings = Settings()
    replay = partial(replay_features, scorer=_scorer_with(build_scorer(settings), model))
    conditions = evaluate_conditions(
        [LabelledSource(directory, replay)],
        PROFILE_COVERAGES,
        load_rules(settings),
        model,
        settings.model_weight,
        settings.alert_threshold,
    )
    return {
        "dataset": directory.name,
        "threshold": settings.alert_threshold,
        "model_weight": settings.model_weight,
        "conditions": {
            result.coverage: {
                "profiles": result.profiles,
                **{system: vars(fig) for system, fig in result.figures["overall"].items()},
            }
            for result in conditions
        },
    }


def _evaluate(args: argparse.Namespace) -> int:
    from models.coverage import parse_coverages
    from models.dataset import LabelledSource
    from models.evaluation import evaluate_conditions
    from models.registry import load_model
    from models.report import figures_json, write_report
    from service.wiring import build_scorer, load_rules
    from streams.replay import replay_features

    settings = Settings()
    coverages = parse_coverages(args.profile_coverage)
    # Read before the (long) replay, so that a wrong file fails at once.
    before = _recorded(args.compare) if args.compare else None
    model_path = args.model or settings.model_path
    model = load_model(model_path) if model_path else None
    # Replayed as the worker runs: the combined score's alerts mark the money they move on.
    replay = partial(replay_features, scorer=_scorer_with(build_scorer(settings), model))
    sources = [LabelledSource(directory, replay) for directory in args.data_dirs]
    conditions = evaluate_conditions(
        sources,
        coverages,
        load_rules(settings),
        model,
        settings.model_weight,
        settings.alert_threshold,
    )
    cases = _case_figures(sources, settings, model_path)
    context = {
        "dataset": ", ".join(str(directory) for directory in args.data_dirs),
        "model": f"{model.name} {model.version}" if model else "none",
        "alert_threshold": settings.alert_threshold,
        "model_weight": settings.model_weight,
    }
    if args.out:
        report = write_report(args.out, conditions, context, cases)
        print(f"wrote {report}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps({**figures_json(conditions, context), "cases": vars(cases)}, indent=2))
        return 0
    for result in conditions:
        fraudulent = int(result.y.sum())
        print(
            f"profile coverage {result.profiles}; {len(result.y):,} transfers, "
            f"{fraudulent:,} fraudulent ({fraudulent / max(1, len(result.y)):.3%})"
        )
        _print_table(result.figures)
        print()
    _print_summary(conditions)
    if before is not None:
        print()
        _print_summary(conditions, before)
    _print_cases(cases)
    return 0


def _scorer_with(scorer: Any, model: Any) -> Any:
    """The configured scorer with `model` in place of the configured one."""
    from models.scorer import Scorer

    return Scorer(
        scorer.rules, scorer.bands, model, scorer.model_weight, scorer.rates, scorer.local_zone
    )


def _case_figures(
    sources: Sequence[LabelledSource], settings: Settings, model_path: Path | None
) -> Any:
    """Alerts per case and rings in one case: each dataset replayed, with every profile it
    has, as the worker runs it (scorer, then cases), each alert counted in the case it ends
    in; pooled datasets keep their rings and cases apart."""
    from models.case_evaluation import case_figures
    from models.jsonl import read_lines
    from service.wiring import build_scorer, case_settings
    from streams.batch import CasedAlertSink, MemoryAlertSink
    from streams.replay import replay
    from streams.state.case_memory import MemoryCases

    scorer = build_scorer(settings.model_copy(update={"model_path": model_path}))
    pairs: list[tuple[str, str]] = []
    ring_of: dict[str, str] = {}
    for n, source in enumerate(sources):
        cases = MemoryCases(case_settings(settings))
        sink = MemoryAlertSink()
        for _ in replay(read_lines(source.files.transfers), source.profiles, scorer=scorer,
                        sink=CasedAlertSink(sink, cases)):  # fmt: skip
            pass
        pairs += [(a.transfer_id, f"{n}:{cases.alert_case[a.alert_id]}")
                  for a in sink.alerts.values()]  # fmt: skip
        ring_of.update({tid: f"{n}:{ring}" for tid, ring in source.labels.ring.items()})
    return case_figures(pairs, ring_of)


def _print_cases(figures: Any) -> None:
    print(
        f"\ncases: {figures.cases} for {figures.alerts} alerts "
        f"({figures.alerts_per_case} alerts per case); fraud cases: {figures.fraud_cases} "
        f"({figures.alerts_per_fraud_case} alerts per case, "
        f"{figures.fraud_cases_with_legitimate_alerts} with legitimate alerts too, "
        f"{figures.fraud_cases_with_several_rings} with several rings)\n"
        f"rings in one case: {figures.rings_in_one_case} of {figures.rings_alerted} alerted "
        f"({figures.rings_in_one_case_share:.0%})"
    )


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


def _print_summary(conditions: Sequence[Any], before: Sequence[Any] | None = None) -> None:
    """Each condition side by side: the combined score's figures, then its recall on the
    layering shapes and per typology (typologies down, conditions across); with `before`
    (an earlier run's figures), each cell reads `before → after`."""
    from models.report import compared_rows, summary_header, summary_rows

    rows = (
        summary_rows(conditions, "combined")
        if before is None
        else compared_rows(before, conditions, "combined")
    )
    if not rows:
        return
    header = summary_header(conditions)
    width = max(len(name) for name in header) + 2
    column = max(10, *(len(cell) + 2 for row in rows for cell in row))
    print("summary, combined score" + (" (before → after):" if before is not None else ":"))
    print(f"{'coverage':<{width}}" + "".join(f"{row[0]:>{column}}" for row in rows))
    for i, name in enumerate(header[1:], start=1):
        print(f"{name:<{width}}" + "".join(f"{row[i]:>{column}}" for row in rows))


def _open_output(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        compressed = gzip.GzipFile(filename="", mode="wb", fileobj=path.open("wb"), mtime=0)
        return cast(BinaryIO, compressed)
    return path.open("wb")


def _recorded(path: Path) -> list[RecordedCondition]:
    """The conditions of an earlier `evaluate --json` report, read before the replay."""
    from models.report import recorded_conditions

    try:
        return recorded_conditions(json.loads(path.read_bytes()))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not an evaluate --json report ({error})") from None


def _backtest(args: argparse.Namespace) -> int:
    import orjson

    from models.jsonl import read_lines
    from service.wiring import build_scorer, case_settings
    from streams.backtest import run_backtest, write_cased_alerts
    from streams.batch import CasedAlertSink, MemoryAlertSink
    from streams.state.case_memory import MemoryCases

    for path in (args.input, args.accounts):
        if path is not None and not path.is_file():
            what = "a directory, not a file" if path.is_dir() else "no such file"
            raise FileNotFoundError(f"{path}: {what}")
    settings = Settings()
    scorer = build_scorer(settings)
    profiles = read_lines(args.accounts) if args.accounts else ()
    # Alerts grouped as the worker groups them, so each line names the case it would.
    cases = MemoryCases(case_settings(settings))
    raised = MemoryAlertSink()
    sink = CasedAlertSink(raised, cases)
    with contextlib.ExitStack() as outputs:
        # Both opened before the replay, so that a path that cannot be written fails at once.
        out, cases_out = (
            None if path is None else outputs.enter_context(_open_output(path))
            for path in (args.alerts_out, args.cases_out)
        )
        summary = run_backtest(read_lines(args.input), profiles, scorer, None, args.batch_size,
                               sink=sink)  # fmt: skip
        if out is not None:  # once every merge is known: the case each alert ends in
            write_cased_alerts(out, raised.alerts.values(), cases)
        summary.cases = len(cases.open_cases())
        for line in summary.lines():
            print(line)
        print(f"alerts written to {args.alerts_out}")
        if cases_out is not None:
            for document in cases.documents():
                cases_out.write(orjson.dumps(document) + b"\n")
            print(f"cases written to {args.cases_out}")
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
    train.add_argument(
        "--seed",
        type=_training_seed,
        action="append",
        help="training seed (default 7); repeated, one fit per seed, averaged (the first also "
        "picks the unmarked accounts)",
    )
    train.add_argument("--name", default="fraudwatch-gbt", help="model name")
    train.add_argument(
        "--max-iter",
        type=int,
        help="boosting rounds (default: the standard setting recorded in the metadata)",
    )
    train.add_argument("--version", help="model version (default: seed and data hash)")
    train.add_argument(
        "--marked-by",
        type=Path,
        metavar="MODEL",
        help="the model whose alerts mark the money in the replays, as the worker marks it "
        "(default: the configured FRAUDWATCH_MODEL_PATH); refused if it learnt this data",
    )
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
    train.set_defaults(run=friendly_errors(_train))

    evaluate = subparsers.add_parser(
        "evaluate",
        help="measure rules, model and combined score on a labelled dataset",
        description="Precision, recall, F1, PR-AUC, alert rate and time to first alert, "
        "overall and per typology, for rules alone, model alone and combined, under each "
        "profile coverage condition.",
    )
    evaluate.add_argument(
        "data_dirs",
        type=Path,
        nargs="+",
        metavar="DATA_DIR",
        help="labelled dataset directories (several: their figures are pooled, e.g. held-out "
        "seeds)",
    )
    evaluate.add_argument(
        "--profile-coverage",
        default="all",
        metavar="LIST",
        help="comma-separated profile coverage conditions to replay the data in: all (every "
        "profile), own-bank (the profiles of the bank with the most accounts, or "
        "labels.json's own_bank), none (default: all)",
    )
    evaluate.add_argument("--model", type=Path, help="model file (default: FRAUDWATCH_MODEL_PATH)")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument(
        "--compare",
        type=Path,
        metavar="BEFORE.json",
        help="an earlier run's --json output (e.g. of the previous model and rules on the same "
        "data): the summary then shows each figure as before → after",
    )
    evaluate.add_argument(
        "--out", type=Path, metavar="REPORT_DIR", help="write evaluation.md and pr_curves.png here"
    )
    evaluate.set_defaults(run=friendly_errors(_evaluate))

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
        "--cases-out",
        type=Path,
        metavar="CASES.jsonl",
        help="also write the cases the alerts are grouped in, as the worker groups them "
        "(one JSON object per line: summary, accounts, alert ids)",
    )
    backtest.add_argument(
        "--accounts",
        type=Path,
        metavar="ACCOUNTS.jsonl",
        help="account profiles, applied before the transfers",
    )
    backtest.add_argument("--batch-size", type=int, default=500, help=argparse.SUPPRESS)
    backtest.set_defaults(run=friendly_errors(_backtest))
