"""The shipped model and rules on data shaped like a bank's, not like the simulator's: ordinary
payments between accounts with no profile stay quiet, and taking profiles away does not make
legitimate transfers look riskier."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import orjson
import pytest

from models.alerts import SeverityBands
from models.coverage import PROFILE_COVERAGES
from models.dataset import LabelledSource
from models.registry import load_model
from models.scorer import Scorer
from models.simulator import SimulationConfig, simulate, write_simulation
from rules.loader import load_rule_library
from service.settings import DEFAULT_MODEL_PATH, DEFAULT_RULES_DIR
from streams.backtest import run_backtest
from streams.replay import replay_features
from tests.traffic import ordinary_p2p, ordinary_profiles

# Not a seed the shipped model was trained on (see its metadata): held-out legitimate traffic.
HELD_OUT = SimulationConfig(seed=4242, accounts=3000, days=3, fraud_share=0.0)


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(
        load_rule_library(DEFAULT_RULES_DIR), SeverityBands(), load_model(DEFAULT_MODEL_PATH)
    )


def _alerts(scorer: Scorer, transfers: list[dict], profiles: list[dict]) -> list[dict]:
    out = io.BytesIO()
    run_backtest(
        [orjson.dumps(t) for t in transfers], [orjson.dumps(p) for p in profiles], scorer, out
    )
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("sessions", [False, True], ids=["no sessions", "own devices"])
def test_200_ordinary_unprofiled_p2p_transfers_raise_at_most_2_alerts(
    scorer: Scorer, seed: int, sessions: bool
) -> None:
    transfers = ordinary_p2p(seed, sessions=sessions)
    assert len(transfers) == 200
    assert len(_alerts(scorer, transfers, [])) <= 2


@pytest.mark.parametrize("profiled", [40, 20], ids=["all profiled", "half profiled"])
def test_the_same_transfers_with_profiles_stay_quiet_too(scorer: Scorer, profiled: int) -> None:
    for seed in (1, 2, 3):
        profiles = ordinary_profiles()[:profiled]
        assert len(_alerts(scorer, ordinary_p2p(seed), profiles)) <= 2


def test_removing_profiles_does_not_raise_the_score_of_legitimate_transfers(
    tmp_path: Path,
) -> None:
    meta = orjson.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_bytes())
    assert HELD_OUT.seed not in meta["training_data"]["simulation_seeds"]
    write_simulation(simulate(HELD_OUT), tmp_path)
    source = LabelledSource(tmp_path, replay_features)
    model = load_model(DEFAULT_MODEL_PATH)
    mean = {}
    for coverage in PROFILE_COVERAGES:
        data = source.replay(source.view(coverage))
        assert data.y.sum() == 0 and len(data.y) > 10_000
        mean[coverage] = float(np.mean(model.probabilities(data.table.columns())))
    assert mean["own-bank"] - mean["all"] <= 0.05
    assert mean["none"] - mean["all"] <= 0.05
