"""The model: reproducible training, safe artifacts, batch explanations, blend and evaluation."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest

from models import evaluation
from models.alerts import SeverityBands
from models.dataset import MODEL_FEATURES, Labels, concatenate, load_labelled
from models.evaluation import (
    LAYERING,
    LAYERING_TYPOLOGIES,
    evaluate,
    minutes_from_first_move_to_alert,
    minutes_to_first_alert,
    minutes_to_second_transfer,
    score_dataset,
)
from models.explanations import describe
from models.features import FEATURE_NAMES, feature_party
from models.feedback import FeedbackFileError, JsonlFeedback
from models.jsonl import read_lines
from models.model import GradientBoostedModel, TrainingParams, suspected_party
from models.registry import ModelArtifactError, load_model, metadata_path, save_model
from models.scorer import combine, final_score
from models.simulator import SimulationConfig, simulate, write_simulation
from models.training import (
    UNMARKED_PAYEE_SHARE,
    TrainingSet,
    add_feedback,
    load_training_set,
    train_model,
)
from rules.loader import load_rule_library
from service.cli import main
from service.settings import DEFAULT_MODEL_PATH, DEFAULT_RULES_DIR
from streams.replay import replay_features

# A fraud-rich tiny run (real prevalence is far lower): enough positives to train on.
TINY = SimulationConfig(seed=3, accounts=400, days=2, fraud_share=0.05)
QUICK = TrainingParams(max_iter=30, calibration_folds=2)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    write_simulation(simulate(TINY), out)
    return out


@pytest.fixture(scope="module")
def trained(tiny_dir: Path) -> tuple[GradientBoostedModel, dict]:
    return train_model(load_training_set([tiny_dir], replay_features), seeds=5, params=QUICK)


def test_model_features_are_known_features_without_outside_knowledge() -> None:
    assert set(MODEL_FEATURES) <= set(FEATURE_NAMES)
    assert len(set(MODEL_FEATURES)) == len(MODEL_FEATURES)
    assert "watchlist_hits" not in MODEL_FEATURES


def test_artifact_round_trip_and_refusals(
    tmp_path: Path, tiny_dir: Path, trained: tuple[GradientBoostedModel, dict]
) -> None:
    model, metadata = trained
    path = tmp_path / "m.skops"
    saved = save_model(path, model, metadata)
    assert saved["features"] == list(MODEL_FEATURES)
    loaded = load_model(path)
    matrix = load_labelled(tiny_dir, replay_features).table.columns()
    np.testing.assert_array_equal(loaded.probabilities(matrix), model.probabilities(matrix))
    assert (loaded.name, loaded.version) == (model.name, model.version)

    meta = json.loads(metadata_path(path).read_text())
    # Fewer names than the classifier's columns, or names in another order, are refused.
    for features in (meta["features"][:-1], meta["features"][::-1]):
        metadata_path(path).write_text(json.dumps({**meta, "features": features}))
        with pytest.raises(ModelArtifactError, match="other features"):
            load_model(path)
    metadata_path(path).write_text(json.dumps(meta))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelArtifactError, match="checksum"):
        load_model(path)
    with pytest.raises(ModelArtifactError, match="not found"):
        load_model(tmp_path / "absent.skops")


def test_explain_batch_scores_the_batch_in_one_call(
    tiny_dir: Path, trained: tuple[GradientBoostedModel, dict]
) -> None:
    model = trained[0]
    data = load_labelled(tiny_dir, replay_features)
    rows = data.table.rows(0, 200)
    calls = []
    original = model.forest.probabilities

    def counted(matrix: np.ndarray) -> np.ndarray:
        calls.append(len(matrix))
        return original(matrix)

    model.forest.probabilities = counted  # type: ignore[method-assign]
    try:
        explained = model.explain_batch(rows)
    finally:
        del model.forest.probabilities
    assert len(calls) == 1
    probabilities = model.probabilities(data.table.columns()[:200])
    assert [p for p, _ in explained] == pytest.approx(probabilities.tolist())
    p, reason = explained[int(np.argmax(probabilities))]
    assert reason.rule == "model" and reason.title.startswith("Model: fraudwatch-gbt ")
    assert 1 <= len(reason.evidence) <= 3 and set(reason.evidence) <= set(MODEL_FEATURES)
    assert reason.score == round(p, 4)
    assert model.explain_batch([]) == []


def test_model_reasons_give_values_in_words_and_never_an_unknown_value(
    tiny_dir: Path, trained: tuple[GradientBoostedModel, dict]
) -> None:
    model = trained[0]
    rows = load_labelled(tiny_dir, replay_features, "none").table.rows(0, 300)
    for row, (_, reason) in zip(rows, model.explain_batch(rows), strict=True):
        assert reason.summary is not None
        assert reason.summary.startswith("fraud probability ")
        for name, value in reason.evidence.items():
            assert value is not None and math.isfinite(value) and value == row[name]
            words = describe(name, value)
            assert words is not None and words in reason.summary
        signals = reason.summary.split(": ", 1)[1].split("; ") if reason.evidence else []
        assert len(signals) == len(reason.evidence)
        assert all(s.endswith((" (raises)", " (lowers)")) for s in signals)
        # Words, not feature names or their glossary descriptions.
        assert "_" not in reason.summary and "fen" not in reason.summary


def test_flat_forest_scores_bit_identically_to_scikit_learn(tiny_dir: Path) -> None:
    model = load_model(DEFAULT_MODEL_PATH)
    matrix = load_labelled(tiny_dir, replay_features).table.columns(model.features)[:2000].copy()
    holes = np.random.default_rng(1).random(matrix.shape) < 0.15
    matrix[holes] = np.nan  # every missing-value branch is taken somewhere
    matrix[:50, :5] = np.inf  # present but infinite: left of a missing-vs-present split
    matrix[50:100, :5] = -np.inf
    expected = model.classifier.predict_proba(matrix)[:, 1]
    np.testing.assert_array_equal(model.forest.probabilities(matrix), expected)
    for rows in (1, 200, 401):
        np.testing.assert_array_equal(model.probabilities(matrix[:rows]), expected[:rows])


def test_shipped_model_loads_matches_features_and_is_small() -> None:
    model = load_model(DEFAULT_MODEL_PATH)
    assert DEFAULT_MODEL_PATH.stat().st_size < 5_000_000
    meta = json.loads(metadata_path(DEFAULT_MODEL_PATH).read_text())
    assert meta["features"] == list(MODEL_FEATURES)
    assert {"seed", "parameters", "training_data", "libraries", "evaluation"} <= set(meta)
    assert model.name == meta["name"]


def test_a_model_alert_suspects_the_party_its_signals_point_at_together() -> None:
    names = ("amount_minor", "src_out_count_1h", "src_distinct_payees_1h", "dst_account_age_days")
    against_payee = np.array([feature_party(name) == "payee" for name in names])
    row = np.array([990000.0, 9.0, 9.0, 3.0])
    # A mule's payout: the amount is the strongest signal, the payer's counts outweigh it.
    assert suspected_party(against_payee, row, np.array([1.0, 0.6, 0.6, 0.0])) == "payer"
    assert suspected_party(against_payee, row, np.array([1.0, 0.3, 0.3, 0.2])) == "payee"
    # An unknown value is no evidence, a lowering signal counts for neither party.
    unknown = np.array([990000.0, np.nan, np.nan, 3.0])
    assert suspected_party(against_payee, unknown, np.array([0.4, 0.6, 0.6, -2.0])) == "payee"
    assert suspected_party(against_payee, row, np.array([-1.0, -0.2, 0.0, 0.01])) is None


def test_combine_is_a_bounded_monotone_blend() -> None:
    assert combine(0.0, 0.0) == 0.0
    assert combine(1.0, 1.0) == pytest.approx(1.0)
    assert combine(0.6, 0.9) > combine(0.0, 0.9) > combine(0.0, 0.5)
    assert combine(0.6, 0.0) < 0.5  # a rule hit the model finds ordinary does not alert alone


def test_severity_is_judged_on_the_score_an_alert_shows() -> None:
    """A model-only alert at probability 0.99998 is 0.79998: shown as 0.8, it is `high`, as
    the bands say, not `medium`; likewise at the alert threshold."""
    score = final_score([], 0.99998, 0.8)
    assert score == 0.8 and SeverityBands().severity(score) == "high"
    assert SeverityBands().severity(final_score([], 0.62498, 0.8)) == "low"  # 0.49998: 0.5


def test_minutes_to_first_alert_per_ring() -> None:
    ts = np.array([0, 60_000, 120_000, 0, 600_000])
    rings, delays = minutes_to_first_alert(
        ["a", "a", "a", "b", "b"], ts, np.array([False, True, True, False, False])
    )
    assert rings == 2 and delays == [1.0]


def test_minutes_to_a_rings_second_transfer_whatever_the_order() -> None:
    ts = np.array([120_000, 0, 60_000, 600_000, 5_000])
    assert minutes_to_second_transfer(["a", "a", "a", "b", "c"], ts) == [1.0]


def test_minutes_from_a_rings_first_own_move_to_its_first_alert() -> None:
    # Ring a: victims pay at 0 and 1 min, its mule moves money at 5 and 6, the alert is at 8.
    # Ring b: a victim's payment alerted at 2, before the mule moved at 3. Ring c never alerted;
    # ring d never moved money itself. Given out of order.
    rings = ["a", "a", "a", "a", "b", "b", "c", "d"]
    minutes = np.array([6, 0, 8, 5, 3, 2, 4, 1]) * 60_000
    moved = np.array([True, False, False, True, True, False, True, False])
    alerted = np.array([False, False, True, False, False, True, False, True])
    assert minutes_from_first_move_to_alert(rings, minutes, moved, alerted) == [3.0, 0.0]


def test_labels_find_the_transfers_a_rings_own_accounts_sent(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({
        "transfers": {"t1": {"ring": "r", "typology": "mule_chain"},
                      "t2": {"ring": "r", "typology": "mule_chain"}},
        "accounts": {"victim": {"ring": "r", "role": "victim"},
                     "mule": {"ring": "r", "role": "mule"}},
    }))  # fmt: skip
    lines = [orjson.dumps({"transfer_id": t, "src_account": src})
             for t, src in (("t1", "victim"), ("t2", "mule"), ("t3", "mule"))]  # fmt: skip
    hostile = [b"not json", b"[]", b'{"transfer_id": [1], "src_account": {"a": 1}}']
    labels = Labels.load(path).with_ring_moves([*lines, *hostile])
    assert labels.ring_accounts == {"mule"}
    # t3 is the mule's own business, not labelled fraud: not a move of the ring.
    assert labels.ring_moves == {"t2"}
    # Labels without account roles read no transfers and measure no moves.
    for roles in ({}, {"accounts": ["mule"]}):
        path.write_text(json.dumps({"transfers": {"t1": {"ring": "r", "typology": "x"}}, **roles}))
        assert Labels.load(path).with_ring_moves(iter(())).ring_moves == frozenset()


def test_the_score_never_falls_as_a_payer_pays_out_more(
    tiny_dir: Path, trained: tuple[GradientBoostedModel, dict]
) -> None:
    model, metadata = trained
    rising = metadata["parameters"]["score_rises_with"]
    assert rising and set(rising) <= set(model.features)
    matrix = load_labelled(tiny_dir, replay_features).table.columns(model.features)[:500]
    before = model.probabilities(matrix)
    for name in rising:
        more = matrix.copy()
        column = more[:, model.features.index(name)]
        column += np.where(np.isnan(column), 0.0, np.maximum(column, 1.0))  # at least doubled
        assert (model.probabilities(more) >= before - 1e-12).all(), name


def test_evaluation_compares_rules_model_and_combined(
    tiny_dir: Path, trained: tuple[GradientBoostedModel, dict]
) -> None:
    data = load_labelled(tiny_dir, replay_features)
    rules = load_rule_library(DEFAULT_RULES_DIR)
    results = evaluate(data, score_dataset(data, rules, trained[0], 0.75), 0.5)
    assert set(results["overall"]) == {"rules", "model", "combined"}
    assert set(results) - {"overall", LAYERING} <= set(data.labels.typology.values())
    overall = results["overall"]["model"]
    assert overall.transfers == len(data.y) and overall.positives == int(data.y.sum())
    assert 0 <= overall.precision <= 1 and 0 <= overall.pr_auc <= 1


def test_layering_slice_pools_the_five_laundering_shapes(
    tiny_dir: Path, trained: tuple[GradientBoostedModel, dict]
) -> None:
    data = load_labelled(tiny_dir, replay_features)
    results = evaluate(data, score_dataset(data, load_rule_library(DEFAULT_RULES_DIR),
                                           trained[0], 0.75), 0.5)  # fmt: skip
    shapes = [name for name in LAYERING_TYPOLOGIES if name in results]
    assert shapes, "the tiny run should hold some layering"
    pooled = results[LAYERING]["combined"]
    assert pooled.positives == sum(results[name]["combined"].positives for name in shapes)
    assert pooled.rings == sum(results[name]["combined"].rings for name in shapes)
    assert pooled.transfers - pooled.positives == int((data.y == 0).sum())


def test_evaluate_command_writes_report_and_json(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tiny_dir), "--json", "--out", str(tmp_path / "r")]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert list(figures["conditions"]) == ["all"]
    assert figures["conditions"]["all"]["slices"]["overall"]["combined"]["transfers"] > 0
    assert (tmp_path / "r" / "pr_curves.png").read_bytes().startswith(b"\x89PNG")
    assert "| F1 |" in (tmp_path / "r" / "evaluation.md").read_text()


def test_evaluate_command_reports_every_profile_coverage_condition(
    tiny_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", str(tiny_dir), "--profile-coverage", "all,own-bank,none"]
    assert main([*argv, "--json"]) == 0
    conditions = json.loads(capsys.readouterr().out)["conditions"]
    assert list(conditions) == ["all", "own-bank", "none"]
    profiled = [int(c["profiles"].split("profiles for ")[1].split()[0].replace(",", ""))
                for c in conditions.values()]  # fmt: skip
    assert profiled[0] > profiled[1] > profiled[2] == 0
    assert "own-bank (ICBC)" in conditions["own-bank"]["profiles"]
    for condition in conditions.values():
        overall = condition["slices"]["overall"]["combined"]
        assert {"precision", "recall", "f1", "alert_rate"} <= set(overall)
        assert set(condition["slices"]) - {"overall"}  # per typology
    assert main(argv) == 0
    text = capsys.readouterr().out
    typology = sorted(load_labelled(tiny_dir, replay_features).labels.typology.values())[0]
    for line in ("precision", "recall", "F1", "alert rate", f"recall {typology}"):
        assert any(row.startswith(line) for row in text.splitlines()), line
    assert "profile coverage own-bank (ICBC): profiles for" in text


def test_evaluate_command_compares_with_an_earlier_run(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tmp_path / "before.json"
    assert main(["evaluate", str(tiny_dir), "--json"]) == 0
    recorded = json.loads(capsys.readouterr().out)
    recall = recorded["conditions"]["all"]["slices"]["overall"]["combined"]["recall"]

    def compared_with(recording: dict) -> dict[str, list[str]]:
        """The summary rows of `evaluate --compare` against `recording`, by name."""
        before.write_text(json.dumps(recording))
        assert main(["evaluate", str(tiny_dir), "--compare", str(before)]) == 0
        lines = capsys.readouterr().out.split("(before → after):")[1].splitlines()
        return {line.split("  ")[0]: line.split() for line in lines if line}

    rows = compared_with(recorded)
    # The same model and rules on the same data: every figure is what it was.
    assert rows["recall"][-3:] == [f"{recall:.3f}", "→", f"{recall:.3f}"]
    assert rows[f"recall {LAYERING}"][-2] == "→"
    assert rows["rings alerted"][-2] == rows["median min to 1st alert"][-2] == "→"
    moved = recorded["conditions"]["all"]["slices"]["overall"]["combined"][
        "median_minutes_from_first_move_to_alert"
    ]
    assert moved is not None and rows["median min from a ring's 1st own move"][-2] == "→"
    # A recording from before the second-transfer and first-move figures still compares.
    for systems in recorded["conditions"]["all"]["slices"].values():
        for figures in systems.values():
            del figures["median_minutes_to_second_transfer"]
            del figures["median_minutes_from_first_move_to_alert"]
    rows = compared_with(recorded)
    assert rows["median min to a ring's 2nd transfer"][-3:-1] == ["–", "→"]
    assert rows["median min from a ring's 1st own move"][-3:-1] == ["–", "→"]


def test_evaluate_command_refuses_a_compare_file_that_is_no_evaluation(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "other.json").write_text('{"alerts": []}')
    assert main(["evaluate", str(tiny_dir), "--compare", str(tmp_path / "other.json")]) == 2
    assert "not the JSON of `fraudwatch evaluate --json`" in capsys.readouterr().err


def test_evaluate_command_refuses_an_unknown_coverage(
    tiny_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tiny_dir), "--profile-coverage", "all,partial"]) == 2
    assert "unknown profile coverage partial" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "not a JSON object"),
        ({}, "`transfers` must name"),
        ({"transfers": "t1"}, "`transfers` must name"),
        ({"transfers": {"t1": ["ring-1"]}}, "`transfers.t1` must be an object"),
        ({"transfers": {"t1": {"ring": 7}}}, "`transfers.t1` must be an object"),
    ],
)
def test_labels_of_another_shape_are_refused_naming_the_field(
    tmp_path: Path, doc: object, field: str
) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=field) as refused:
        Labels.load(path)
    assert str(path) in str(refused.value)


def test_a_bank_s_labels_may_list_fraud_without_rings(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"transfers": ["t1", "t2"]}))
    labels = Labels.load(path)
    assert labels.typology == {"t1": "unknown", "t2": "unknown"}
    # Fraud without a ring is no ring: no ring figures, rather than one ring of everything.
    y, scores = np.array([1, 1, 1, 0]), np.array([0.9, 0.1, 0.9, 0.1])
    ts = np.array([0, 60_000, 120_000])
    ringless = evaluation.figures(y, scores, 0.5, ["", "", ""], ts)
    assert (ringless.recall, ringless.rings, ringless.rings_alerted) == (0.6667, 0, 0)
    assert ringless.median_minutes_to_first_alert is None
    mixed = evaluation.figures(y, scores, 0.5, ["r", "", "r"], ts, np.array([True, True, False]))
    assert (mixed.rings, mixed.rings_alerted) == (1, 1)
    assert mixed.median_minutes_to_second_transfer == 2.0


def test_evaluate_command_refuses_labels_of_other_transfers(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Labels beside transfers they were not written with give figures that look plausible
    and are wrong: refused, whether the transfers differ (the digest) or are none at all."""
    other = tmp_path / "other"
    write_simulation(simulate(replace(TINY, days=3)), other)  # same seed: the same ids
    (other / "labels.json").write_bytes((tiny_dir / "labels.json").read_bytes())
    assert main(["evaluate", str(other), "--profile-coverage", "none"]) == 2
    assert "written for other transfers" in capsys.readouterr().err
    undigested = orjson.loads((tiny_dir / "labels.json").read_bytes())
    del undigested["transfers_digest"]  # labels written by other tools carry none
    (other / "labels.json").write_bytes(orjson.dumps(undigested))
    (other / "transfers.jsonl.gz").unlink()
    (other / "transfers.jsonl").write_text("")
    assert main(["evaluate", str(other), "--profile-coverage", "none"]) == 2
    assert "none of its" in capsys.readouterr().err


def test_feedback_file_labels_and_training_with_it(tiny_dir: Path, tmp_path: Path) -> None:
    transfers = [orjson.loads(line) for line in read_lines(tiny_dir / "transfers.jsonl.gz")]
    path = tmp_path / "feedback.jsonl"
    records = [
        {"transfer": {**transfers[0], "transfer_id": "fb-1"}, "label": "confirmed"},
        {"transfer": {**transfers[1], "transfer_id": "fb-2"}, "label": "dismissed"},
        {"transfer": {**transfers[2], "transfer_id": "fb-3"}, "label": "appealed"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert [(t["transfer_id"], label) for t, label in JsonlFeedback(path)] == [
        ("fb-1", 1),
        ("fb-2", 0),
    ]
    training = load_training_set([tiny_dir], replay_features)
    rows = len(training.labels)
    digest = add_feedback(training, JsonlFeedback(path), replay_features)
    assert training.feedback_rows == 2 and len(training.labels) == rows + 2
    assert training.labels[-2:].tolist() == [1, 0] and len(digest) == 64

    (tmp_path / "bad.jsonl").write_text('{"label": 1}\n')
    with pytest.raises(FeedbackFileError, match=r"bad\.jsonl:1"):
        list(JsonlFeedback(tmp_path / "bad.jsonl"))


def test_train_command_twice_with_one_seed_reproduces_the_model(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [tmp_path / "a.skops", tmp_path / "b.skops"]
    for out in paths:
        argv = ["train", "--data", str(tiny_dir), "--out", str(out), "--seed", "2"]
        assert main([*argv, "--max-iter", "20"]) == 0
    assert "prediction fingerprint" in capsys.readouterr().out
    first, second = (json.loads(metadata_path(p).read_text()) for p in paths)
    assert first["prediction_fingerprint"] == second["prediction_fingerprint"]
    assert first["training_data"] == second["training_data"]
    assert first["training_data"]["rows"] > 0 and first["seed"] == 2
    # The taint in the replays depends on who marked the money: it is recorded with the model.
    assert first["taint_marked_by"] == second["taint_marked_by"]
    assert first["taint_marked_by"]["unmarked_payee_share"] == UNMARKED_PAYEE_SHARE
    matrix = load_labelled(tiny_dir, replay_features).table.columns()
    a, b = (load_model(p) for p in paths)
    np.testing.assert_array_equal(a.probabilities(matrix), b.probabilities(matrix))
    assert a.version == b.version and a.version.startswith("s2-")


def test_a_model_of_several_seeds_averages_one_fit_per_seed(tiny_dir: Path) -> None:
    training = load_training_set([tiny_dir], replay_features)
    params = TrainingParams(max_iter=10, calibration_folds=2)
    (one, _), (other, _) = (train_model(training, seed, params) for seed in (3, 4))
    both, metadata = train_model(training, [3, 4], params)
    assert both.version.startswith("s3+4-") and metadata["fit_seeds"] == [3, 4]
    assert len(both.classifier.calibrated_classifiers_) == 4
    matrix = training.matrix[:500]
    np.testing.assert_allclose(
        both.probabilities(matrix), (one.probabilities(matrix) + other.probabilities(matrix)) / 2
    )


def test_train_refuses_a_bad_seed_before_replaying_anything(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.skops"
    argv = ["train", "--data", str(tiny_dir), "--out", str(out)]
    for seed in ("-1", str(2**32), "seven"):
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--seed", seed])
        assert exited.value.code == 2 and "--seed" in capsys.readouterr().err
    assert main([*argv, "--seed", "7", "--seed", "7"]) == 2
    assert "a seed given twice" in capsys.readouterr().err and not out.exists()


def test_train_refuses_to_mark_data_with_a_model_that_learnt_it(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "marker.skops"
    assert main(["train", "--data", str(tiny_dir), "--out", str(marker), "--max-iter", "5"]) == 0
    # A bank's history has no simulation seed: its transfers file's digest tells it apart.
    history = tmp_path / "history"
    history.mkdir()
    (history / "transfers.jsonl.gz").write_bytes((tiny_dir / "transfers.jsonl.gz").read_bytes())
    labels = json.loads((tiny_dir / "labels.json").read_text())
    (history / "labels.json").write_text(json.dumps({**labels, "seed": None}))
    out = tmp_path / "next.skops"
    for data in (tiny_dir, history):
        argv = ["train", "--data", str(data), "--out", str(out), "--marked-by", str(marker)]
        assert main([*argv, "--max-iter", "5"]) == 2
        error = capsys.readouterr().err
        assert f"{data}: the marking model fraudwatch-gbt" in error
        assert "was trained on this data" in error and not out.exists()
    unseen = tmp_path / "unseen"
    write_simulation(simulate(replace(TINY, seed=4)), unseen)
    argv = ["train", "--data", str(unseen), "--out", str(out), "--marked-by", str(marker)]
    assert main([*argv, "--max-iter", "5"]) == 0
    marked_by = json.loads(metadata_path(out).read_text())["taint_marked_by"]["scorer"]
    assert marked_by == "fraudwatch-gbt " + json.loads(metadata_path(marker).read_text())["version"]


def test_pooled_datasets_keep_their_rings_apart(tiny_dir: Path, tmp_path: Path) -> None:
    write_simulation(simulate(replace(TINY, seed=4)), tmp_path)
    parts = [load_labelled(tiny_dir, replay_features), load_labelled(tmp_path, replay_features)]
    pooled = concatenate(parts)
    assert len(pooled.y) == sum(len(part.y) for part in parts)
    rings = {pooled.labels.ring[tid] for tid in pooled.labels.ring}
    assert len(rings) == sum(len(set(part.labels.ring.values())) for part in parts)
    with pytest.raises(ValueError, match="share transfer ids"):
        concatenate([parts[0], parts[0]])


def test_the_same_data_marked_by_another_scorer_is_another_model_version() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.random((400, len(MODEL_FEATURES)))
    labels = (matrix[:, 0] > 0.8).astype(np.int8)
    versions = set()
    for marked_by in ({"scorer": "rules"}, {"scorer": "fraudwatch-gbt s7-x"}):
        training = TrainingSet(matrix, labels, [], taint_marked_by=marked_by)
        model, metadata = train_model(training, 1, TrainingParams(max_iter=3))
        assert metadata["taint_marked_by"] == marked_by
        versions.add(model.version)
    assert len(versions) == 2
