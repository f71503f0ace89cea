"""The synthetic bank-traffic simulator: determinism, contract, ordering, labels, negatives."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from models.events import Transfer, parse_account, parse_transfer
from models.simulator import TYPOLOGIES, Simulation, SimulationConfig, simulate, write_simulation
from models.simulator.config import CN_TZ

# Starts on a Thursday so that the two days include a Friday (weekly payroll runs).
SMALL = SimulationConfig(seed=11, accounts=500, days=2, start=datetime(2026, 3, 5, tzinfo=CN_TZ))


@pytest.fixture(scope="module")
def small() -> Simulation:
    return simulate(SMALL)


@pytest.fixture(scope="module")
def parsed(small: Simulation) -> list[Transfer]:
    return [parse_transfer(orjson.dumps(t)) for t in small.transfers]


def _files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in sorted(p.name for p in out.iterdir())}


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    write_simulation(simulate(SMALL), tmp_path / "a")
    write_simulation(simulate(SMALL), tmp_path / "b")
    other = SimulationConfig(seed=12, accounts=SMALL.accounts, days=SMALL.days, start=SMALL.start)
    write_simulation(simulate(other), tmp_path / "c")
    first = _files(tmp_path / "a")
    assert set(first) == {"transfers.jsonl.gz", "accounts.jsonl", "labels.json"}
    assert first == _files(tmp_path / "b")
    assert first["transfers.jsonl.gz"] != _files(tmp_path / "c")["transfers.jsonl.gz"]


def test_written_files_match_the_api(small: Simulation, tmp_path: Path) -> None:
    write_simulation(small, tmp_path)
    with gzip.open(tmp_path / "transfers.jsonl.gz", "rb") as fh:
        lines = fh.read().splitlines()
    assert [orjson.loads(line) for line in lines] == small.transfers
    labels = json.loads((tmp_path / "labels.json").read_text(encoding="utf-8"))
    assert labels["seed"] == SMALL.seed
    assert labels["transfers"] == small.labels["transfers"]
    assert len((tmp_path / "accounts.jsonl").read_bytes().splitlines()) == len(small.accounts)


def test_every_event_and_profile_parses(small: Simulation, parsed: list[Transfer]) -> None:
    assert len(parsed) == len({t.transfer_id for t in parsed}) > 1000
    assert all(t.ts.endswith("+08:00") and t.currency == "CNY" for t in parsed)
    assert all(isinstance(t["amount"], str) for t in small.transfers)
    profiles = [parse_account(orjson.dumps(p)) for p in small.accounts]
    assert {p.kind for p in profiles} == {"personal", "business"}
    known = {p.account_id for p in profiles}
    assert all(t.src_account in known for t in parsed)


def test_window_and_bounded_out_of_order_delivery(parsed: list[Transfer]) -> None:
    start = SMALL.start_ms
    assert all(start <= t.ts_ms < SMALL.end_ms for t in parsed)
    latest, worst, late = 0, 0, 0
    for t in parsed:
        late += t.ts_ms < latest
        latest = max(latest, t.ts_ms)
        worst = max(worst, latest - t.ts_ms)
    assert 0 < worst <= 10 * 60_000
    assert late < 0.05 * len(parsed)


def test_every_typology_is_labelled_with_its_transfers(small: Simulation) -> None:
    labels = small.labels
    ids = {t["transfer_id"] for t in small.transfers}
    by_typology = Counter(v["typology"] for v in labels["transfers"].values())
    assert set(by_typology) == set(TYPOLOGIES)
    assert set(labels["transfers"]) <= ids
    for ring_id, ring in labels["rings"].items():
        assert ring["accounts"]
        for account in ring["accounts"]:
            assert labels["accounts"][account]["ring"] == ring_id
    roles = Counter(v["role"] for v in labels["accounts"].values())
    assert roles["victim"] and roles["mule"] and roles["cashout"]


def test_fraud_rate_in_a_sane_band() -> None:
    sim = simulate(SimulationConfig(seed=5, accounts=4000, days=3))
    rate = len(sim.labels["transfers"]) / len(sim.rank)
    assert 0.002 < rate < 0.03


def test_mules_are_young_new_accounts_sharing_operator_sessions(
    small: Simulation, parsed: list[Transfer]
) -> None:
    profiles = {p["account_id"]: p for p in small.accounts}
    mules = [a for a, v in small.labels["accounts"].items() if v["role"] in ("mule", "cashout")]
    born = {a: p.get("holder_birth_year") for a, p in profiles.items()}
    young = [a for a in mules if isinstance(year := born.get(a), int) and year >= 2000]
    assert len(young) > len(mules) / 2
    accounts_per_device: dict[str, set[str]] = defaultdict(set)
    for t in parsed:
        if t.transfer_id in small.labels["transfers"] and t.device_id:
            accounts_per_device[t.device_id].add(t.src_account)
    assert max(len(a) for a in accounts_per_device.values()) >= 3


def test_hard_negatives_are_present(small: Simulation, parsed: list[Transfer]) -> None:
    profiles = {p["account_id"]: p for p in small.accounts}
    fraud = small.labels["transfers"]
    legit = [t for t in parsed if t.transfer_id not in fraud]
    payees: dict[str, set[str]] = defaultdict(set)
    for t in legit:
        if t.memo == "salary":
            payees[t.src_account].add(t.dst_account)
    assert payees, "no payroll"
    assert all(profiles[e]["kind"] == "business" for e in payees)
    assert max(len(p) for p in payees.values()) >= 5
    device_accounts: dict[str, set[str]] = defaultdict(set)
    for t in legit:
        if t.device_id:
            device_accounts[t.device_id].add(t.src_account)
    assert any(len(a) in (2, 3) for a in device_accounts.values()), "no shared family device"
    assert any(t.channel == "atm" for t in legit)
    assert any(t.dst_country != "CN" for t in legit) or SMALL.accounts < 1000
