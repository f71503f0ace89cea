"""The synthetic bank-traffic simulator: determinism, contract, ordering, labels, negatives."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from models.coverage import account_banks, select_profiles
from models.events import Transfer, parse_account, parse_transfer
from models.simulator import TYPOLOGIES, Simulation, SimulationConfig, simulate, write_simulation
from models.simulator.config import CN_TZ
from service.cli import main

# Starts on a Thursday so that the two days include a Friday (weekly payroll runs); fraud-rich
# (real prevalence is far lower) so that one ring of every typology fits in.
SMALL = SimulationConfig(
    seed=11, accounts=500, days=2, start=datetime(2026, 3, 5, tzinfo=CN_TZ), fraud_share=0.4
)


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
    other = replace(SMALL, seed=12)
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


@pytest.mark.parametrize("share", [0.003, 0.01, 0.03])
def test_fraud_share_is_what_was_asked(share: float) -> None:
    sim = simulate(SimulationConfig(seed=5, accounts=6000, days=3, fraud_share=share))
    rate = len(sim.labels["transfers"]) / len(sim.rank)
    # Whole rings are added until the share is reached, so it overshoots by at most one ring.
    assert share * 0.7 < rate < share * 1.6


def test_default_fraud_share_is_near_what_banks_see() -> None:
    assert SimulationConfig().fraud_share <= 0.001


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


@pytest.fixture(scope="module")
def bank_day() -> Simulation:
    """Three weeks of a mid-sized bank at a realistic fraud share."""
    return simulate(SimulationConfig(seed=21, accounts=3000, days=21, fraud_share=0.003))


def test_profile_coverage_gives_every_customer_one_bank_or_none(tmp_path: Path) -> None:
    config = replace(SMALL, fraud_share=0.05)
    every = simulate(config)
    own = simulate(replace(config, profile_coverage="own-bank"))
    none = simulate(replace(config, profile_coverage="none"))
    assert every.transfers == own.transfers == none.transfers
    banks = {t["src_account"]: t["src_bank"] for t in every.transfers}
    profiled = {p["account_id"] for p in own.accounts}
    assert profiled and profiled < {p["account_id"] for p in every.accounts}
    assert {banks[a] for a in profiled if a in banks} == {own.labels["own_bank"]}
    assert 0.1 < len(profiled) / len(every.accounts) < 0.4
    assert none.accounts == []
    write_simulation(none, tmp_path)
    assert (tmp_path / "accounts.jsonl").read_bytes() == b""
    assert json.loads((tmp_path / "labels.json").read_text())["profile_coverage"] == "none"


def test_simulate_counts_the_accounts_in_the_transfers_as_evaluate_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, coverage = ["--out", str(tmp_path)], ["--profile-coverage", "own-bank"]
    assert (
        main(["simulate", *out, "--seed", "5", "--accounts", "300", "--days", "2", *coverage]) == 0
    )
    lines = gzip.decompress((tmp_path / "transfers.jsonl.gz").read_bytes()).splitlines()
    profiles = (tmp_path / "accounts.jsonl").read_bytes().splitlines()
    view = select_profiles(profiles, "all", account_banks(lines))
    said = f"{view.profiled_accounts} of the {view.accounts} accounts in the transfers"
    assert said in capsys.readouterr().out
    assert said in view.describe()


def test_an_unprofiled_or_external_payee_says_little_about_fraud(bank_day: Simulation) -> None:
    fraud = bank_day.labels["transfers"]
    own_bank = bank_day.labels["own_bank"]
    # What a bank with profiles for its own customers only would see.
    own = {t["src_account"] for t in bank_day.transfers if t["src_bank"] == own_bank}
    own |= {t["dst_account"] for t in bank_day.transfers if t.get("dst_bank") == own_bank}
    unprofiled = [t for t in bank_day.transfers if t["dst_account"] not in own]
    overall = len(fraud) / len(bank_day.transfers)
    share = sum(t["transfer_id"] in fraud for t in unprofiled) / len(unprofiled)
    assert share < 1.5 * overall
    # Legitimate customers pay accounts outside every bank too: cash, counters, abroad.
    legit_external = [
        t for t in bank_day.transfers if "dst_bank" not in t and t["transfer_id"] not in fraud
    ]
    assert {t["channel"] for t in legit_external} >= {"atm", "counter", "web"}
    assert any(t["dst_country"] != "CN" for t in legit_external)


def _legit_by_account(sim: Simulation, role: str) -> dict[str, list[dict]]:
    fraud = sim.labels["transfers"]
    grouped: dict[str, list[dict]] = defaultdict(list)
    for t in sim.transfers:
        if t["transfer_id"] not in fraud:
            grouped[str(t[role])].append(t)
    return grouped


def test_every_typology_has_legitimate_look_alikes(bank_day: Simulation) -> None:
    kinds = {str(p["account_id"]): p["kind"] for p in bank_day.accounts}
    ages = {
        str(p["account_id"]): 2026 - int(str(p["holder_birth_year"]))
        for p in bank_day.accounts
        if "holder_birth_year" in p
    }
    paid_by = _legit_by_account(bank_day, "dst_account")
    paid_out = _legit_by_account(bank_day, "src_account")
    personal = {a for a, kind in kinds.items() if kind == "personal"}

    def busiest_day(transfers: list[dict], key: str) -> int:
        per_day: dict[str, set[str]] = defaultdict(set)
        for t in transfers:
            per_day[str(t["ts"])[:10]].add(str(t[key]))
        return max((len(v) for v in per_day.values()), default=0)

    # fan-in: personal accounts paid by many distinct payers in a day (sellers, class reps)
    assert sum(busiest_day(paid_by[a], "src_account") >= 8 for a in personal) >= 10
    # fan-out: personal accounts paying many distinct payees in a day (a foreman's crew)
    assert sum(busiest_day(paid_out[a], "dst_account") >= 8 for a in personal) >= 3
    # pass-through: a personal account paid by 3+ accounts that pays most of it on the same day
    passing = 0
    for account in personal:
        for day in {str(t["ts"])[:10] for t in paid_out.get(account, [])}:
            received = [t for t in paid_by.get(account, []) if str(t["ts"]).startswith(day)]
            sent = [t for t in paid_out[account] if str(t["ts"]).startswith(day)]
            cash_in = sum(float(str(t["amount"])) for t in received)
            cash_out = sum(float(str(t["amount"])) for t in sent)
            payers = {t["src_account"] for t in received}
            passing += len(payers) >= 3 and cash_in >= 5000 and cash_out >= 0.8 * cash_in
    assert passing >= 10
    # elderly customers paying a payee large sums in tranches
    tranches = [
        a
        for a, transfers in paid_out.items()
        if ages.get(a, 0) >= 65
        and any(
            sum(u["dst_account"] == t["dst_account"] and float(str(u["amount"])) >= 5000
                for u in transfers) >= 2
            for t in transfers
        )
    ]  # fmt: skip
    assert len(tranches) >= 3
    # amounts just under a 50,000 limit, and cash in 20,000 chunks, both legitimate
    legit = [t for ts in paid_out.values() for t in ts]
    assert sum(49_000 <= float(str(t["amount"])) < 50_000 for t in legit) >= 5
    assert sum(t["channel"] == "atm" and float(str(t["amount"])) == 20_000 for t in legit) >= 5
    # cycles: money lent and paid back
    pairs = {(t["src_account"], t["dst_account"]) for t in legit}
    assert sum((b, a) in pairs for a, b in pairs) >= 20


def test_own_bank_coverage_says_when_no_bank_is_named() -> None:
    line = b'{"transfer_id": "t1", "src_account": "A", "dst_account": "B"}'
    profile = b'{"account_id": "A", "holder_birth_year": 1950}'
    view = select_profiles([profile], "own-bank", account_banks([line]))
    assert view.describe() == (
        "own-bank (no bank named in the transfers or labels): profiles for 0 of the 2 "
        "accounts in the transfers"
    )
