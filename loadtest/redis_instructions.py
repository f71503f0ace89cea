"""Redis instructions per transfer, counted exactly: `python -m loadtest.redis_instructions`.

CPU-seconds on a shared machine swing by a third from run to run; instructions counted by
valgrind's callgrind do not. This applies `--warm` simulated transfers (the load test's, with
their profiles) to an empty Redis through the worker's state store, saves that Redis, starts
it again under callgrind on the saved data, and counts the instructions it spends applying
the next `--measure` transfers. It also gives Redis's memory per account after the warm-up.
`--zset-max-listpack-entries` replaces the embedded Redis's setting, to compare encodings.
Prints one JSON object. Needs valgrind (`apt-get install -y valgrind`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from loadtest.data import load_profiles, prepare
from models.events import Transfer, parse_transfer
from service import wiring
from service.embedded.process import ManagedProcess
from service.embedded.redis_server import STATE_TUNING, debian_binary, start_redis
from service.settings import Settings
from streams.state.pipelines import AnyRedis

_BATCH = 500
_TOTALS = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def callgrind_total(out_file: Path) -> int:
    """The instructions a callgrind output file counted (its `totals:` or `summary:` line)."""
    found = _TOTALS.findall(out_file.read_bytes())
    if not found:
        raise ValueError(f"{out_file}: no totals line; did callgrind finish?")
    return int(found[-1])


def _apply(settings: Settings, client: AnyRedis, transfers: Sequence[Transfer]) -> None:
    store = wiring.redis_state_store(settings, client)
    for low in range(0, len(transfers), _BATCH):
        store.apply_transfers(transfers[low : low + _BATCH])


def _settings(server: ManagedProcess) -> tuple[Settings, AnyRedis]:
    settings = Settings(redis_url=f"redis://127.0.0.1:{server.port}/0")
    return settings, wiring.redis_client(settings)


def run(args: argparse.Namespace) -> dict[str, object]:
    """Warm a Redis, count the measured transfers' instructions under callgrind; the figures."""
    valgrind = debian_binary("valgrind", "valgrind")
    control = debian_binary("callgrind_control", "valgrind")
    dataset = prepare(args.warm + args.measure, args.seed)
    transfers = [parse_transfer(value) for value in dataset.values]
    warm, measured = transfers[: args.warm], transfers[args.warm :]
    tuning = (
        STATE_TUNING
        if args.zset_max_listpack_entries is None
        else ("--zset-max-listpack-entries", str(args.zset_max_listpack_entries))
    )
    with tempfile.TemporaryDirectory(prefix="redis-instructions-") as tmp:
        workdir = Path(tmp)
        server = start_redis(workdir, tuning=tuning)
        try:
            settings, client = _settings(server)
            load_profiles(settings, client, dataset.profiles)
            _apply(settings, client, warm)
            memory = int(client.info("memory")["used_memory"])
            client.save()  # the counted server starts from this
        finally:
            server.stop()
        out_file = workdir / "callgrind.out"
        launcher = (valgrind, "--tool=callgrind", "--instr-atstart=no",
                    f"--callgrind-out-file={out_file}")  # fmt: skip
        counted = start_redis(workdir, tuning=tuning, launcher=launcher, timeout_s=300)
        try:
            settings, client = _settings(counted)
            instrument = [control, "-i", "on", str(counted.pid)]
            subprocess.run(instrument, check=True, capture_output=True)
            _apply(settings, client, measured)
            instrument[2] = "off"
            subprocess.run(instrument, check=True, capture_output=True)
        finally:
            counted.stop(timeout_s=120)  # callgrind writes its file as the server exits
        instructions = callgrind_total(out_file)
    accounts = {t.src_account for t in warm} | {t.dst_account for t in warm}
    return {
        "warm_transfers": len(warm),
        "measured_transfers": len(measured),
        "zset_max_listpack_entries": int(tuning[1]),
        "redis_instructions_per_transfer": round(instructions / len(measured)),
        "redis_memory_per_account_bytes": round(memory / len(accounts)),
        "seed": args.seed,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the count, print its JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.redis_instructions", description=__doc__
    )
    parser.add_argument("--warm", type=int, default=60_000, help="transfers applied first")
    parser.add_argument("--measure", type=int, default=3_000, help="transfers counted")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (as the load test)")
    parser.add_argument(
        "--zset-max-listpack-entries",
        type=int,
        default=None,
        help="Redis's setting to count with (default: the embedded Redis's)",
    )
    print(json.dumps(run(parser.parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
