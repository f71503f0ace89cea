"""Turning event columns into contract §1 dicts and writing a run to disk, streaming.

Files are byte-identical for equal inputs: keys in a fixed order, gzip without a timestamp or
file name in its header, labels serialised with sorted keys.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson

from models.simulator.accounts import NONE, AccountTable, EntityPool
from models.simulator.config import CHANNELS, COUNTRIES, MEMOS
from models.simulator.formatting import format_amount, format_ts, transfer_id
from models.simulator.traffic import COLUMNS, Columns

if TYPE_CHECKING:
    from models.simulator.engine import Simulation

_CHUNK = 65_536  # rows converted to Python objects at a time, to bound memory


def transfer_dict(
    row: tuple[int, ...], tid: str, ts: str, table: AccountTable, entities: EntityPool
) -> dict[str, object]:
    """One transfer in contract §1 shape from a row (ts, src, dst, amount, channel, device,
    ip, phone, country, memo, ring); optional fields are left out when unknown."""
    _, src, dst, amount, channel, device, ip, phone, country, memo, _ = row
    doc: dict[str, object] = {
        "transfer_id": tid,
        "ts": ts,
        "src_account": table.ids[src],
        "dst_account": table.ids[dst],
        "amount": format_amount(amount),
        "currency": "CNY",
        "channel": CHANNELS[channel],
        "src_bank": table.bank[src],
    }
    if table.bank[dst]:
        doc["dst_bank"] = table.bank[dst]
    if device != NONE:
        doc["device_id"] = entities.devices[device]
    if ip != NONE:
        doc["ip"] = entities.ips[ip]
    if phone != NONE:
        doc["phone"] = entities.phones[phone]
    doc["src_country"] = "CN"
    doc["dst_country"] = COUNTRIES[country]
    if memo != NONE:
        doc["memo"] = MEMOS[memo]
    return doc


def iter_transfer_dicts(
    cols: Columns, rank: np.ndarray, table: AccountTable, entities: EntityPool, seed: int
) -> Iterator[dict[str, object]]:
    """Transfers as dicts, in the order of the columns, converted a chunk at a time."""
    for lo in range(0, rank.size, _CHUNK):
        chunk = [cols[name][lo : lo + _CHUNK].tolist() for name in COLUMNS]
        for row, r in zip(zip(*chunk, strict=True), rank[lo : lo + _CHUNK].tolist(), strict=True):
            yield transfer_dict(row, transfer_id(seed, r), format_ts(row[0]), table, entities)


def write_simulation(sim: Simulation, out_dir: Path) -> None:
    """Write transfers.jsonl.gz, accounts.jsonl and labels.json into `out_dir`; the labels
    carry the digest of the transfers they label (`models.jsonl.lines_digest`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with (
        open(out_dir / "transfers.jsonl.gz", "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz,
    ):
        buffer: list[bytes] = []
        for doc in sim.iter_transfers():
            buffer.append(orjson.dumps(doc))
            if len(buffer) >= 8192:
                chunk = b"\n".join(buffer) + b"\n"
                gz.write(chunk)
                digest.update(chunk)
                buffer.clear()
        if buffer:
            chunk = b"\n".join(buffer) + b"\n"
            gz.write(chunk)
            digest.update(chunk)
    with open(out_dir / "accounts.jsonl", "wb") as fh:
        for profile in sim.accounts:
            fh.write(orjson.dumps(profile) + b"\n")
    with open(out_dir / "labels.json", "w", encoding="utf-8") as fh:
        labels = {**sim.labels, "transfers_digest": digest.hexdigest()}
        json.dump(labels, fh, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        fh.write("\n")
