"""`fraudwatch simulate`: write a deterministic, labelled synthetic dataset."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.coverage import PROFILE_COVERAGES
from models.simulator import DEFAULT_START, SimulationConfig, simulate, write_simulation
from models.simulator.config import CN_TZ, DEFAULT_FRAUD_SHARE, OWN_BANK


def _start(value: str) -> datetime:
    """An ISO date or date-time; without an offset it is taken as China Standard Time."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=CN_TZ)


def positive_int(value: str) -> int:
    """An argument that must be a whole number above 0."""
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return number


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= share < 0.5:
        raise argparse.ArgumentTypeError("must be at least 0 and below 0.5 (e.g. 0.001)")
    return share


def run(args: argparse.Namespace) -> int:
    """Simulate and write transfers.jsonl.gz, accounts.jsonl and labels.json to --out."""
    config = SimulationConfig(
        seed=args.seed,
        accounts=args.accounts,
        days=args.days,
        start=args.start,
        fraud_share=args.fraud_share,
        profile_coverage=args.profile_coverage,
    )
    began = time.perf_counter()
    sim = simulate(config)
    write_simulation(sim, args.out)
    fraud = len(sim.labels["transfers"])
    total = int(sim.rank.size)
    # What `evaluate` counts: the accounts the transfers name (some generated ones never pay).
    named = {sim.table.ids[i] for i in np.union1d(sim.columns["src"], sim.columns["dst"])}
    profiled_named = sum(str(profile["account_id"]) in named for profile in sim.accounts)
    print(
        f"wrote {total} transfers ({fraud} fraudulent, {fraud / max(total, 1):.2%}), "
        f"{len(sim.labels['rings'])} rings; profiles for {len(sim.accounts)} of "
        f"{len(sim.table)} accounts ({config.profile_coverage}), {profiled_named} of the "
        f"{len(named)} accounts in the transfers, to {args.out} "
        f"in {time.perf_counter() - began:.1f} s"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add the `simulate` command."""
    parser = subparsers.add_parser(
        "simulate",
        help="write a labelled synthetic bank-traffic dataset",
        description="Deterministic synthetic transfers, account profiles and fraud labels.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--accounts", type=positive_int, default=SimulationConfig.accounts)
    parser.add_argument("--days", type=positive_int, default=SimulationConfig.days)
    parser.add_argument(
        "--start",
        type=_start,
        default=DEFAULT_START,
        help="first simulated day, ISO date (default 2026-03-01, China Standard Time)",
    )
    parser.add_argument(
        "--fraud-share",
        type=_share,
        default=DEFAULT_FRAUD_SHARE,
        help=f"fraudulent share of the transfers (default {DEFAULT_FRAUD_SHARE}, near what "
        "banks see; run more accounts, days or seeds for more rings)",
    )
    parser.add_argument(
        "--profile-coverage",
        choices=PROFILE_COVERAGES,
        default="all",
        help=f"which accounts get a profile in accounts.jsonl: every customer, only those of "
        f"one bank ({OWN_BANK}, about a quarter), or none (default all)",
    )
    parser.set_defaults(run=run)
