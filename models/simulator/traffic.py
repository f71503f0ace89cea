"""Columnar event storage and the time/session helpers every traffic generator shares.

Events are kept as numpy columns (account, entity and vocabulary indices, fen, ms) rather
than per-transfer dicts, so that millions of them fit in memory and sort in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from models.simulator.accounts import NONE
from models.simulator.config import (
    CH_API,
    CH_MOBILE,
    CH_WEB,
    CN_OFFSET_MS,
    MS_PER_DAY,
    MS_PER_HOUR,
)
from models.simulator.population import Population

COLUMNS: tuple[str, ...] = (
    "ts",
    "src",
    "dst",
    "amount",
    "channel",
    "device",
    "ip",
    "phone",
    "country",
    "memo",
    "ring",
)
Columns = dict[str, np.ndarray]

# Relative activity per local hour of day (index 0 = 00:00-01:00).
_RETAIL = [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 3, 5, 6, 7, 8, 10, 8, 7, 7, 7, 8, 10, 12, 12, 10, 6, 3]
_OFFICE = [0, 0, 0, 0, 0, 0, 0.2, 1, 6, 10, 10, 8, 4, 7, 9, 9, 8, 5, 2, 1, 0.5, 0.2, 0, 0]
_NIGHT = [8, 7, 6, 4, 2, 1, 0.5, 0.5, 1, 2, 3, 4, 5, 4, 4, 4, 4, 5, 6, 7, 8, 9, 10, 10]
HOURS: dict[str, np.ndarray] = {
    name: np.array(w, dtype=float) / sum(w)
    for name, w in (("retail", _RETAIL), ("office", _OFFICE), ("night", _NIGHT))
}


class Ledger:
    """An append-only set of events, stored column by column."""

    def __init__(self) -> None:
        self._chunks: list[Columns] = []

    def add(self, **columns: np.ndarray | int) -> None:
        """Append events; `ts`, `src`, `dst`, `amount`, `channel` are required, others default."""
        size = np.asarray(columns["ts"]).size
        if size == 0:
            return
        chunk: Columns = {}
        for name in COLUMNS:
            value = columns.get(name, NONE)
            chunk[name] = np.broadcast_to(np.asarray(value, dtype=np.int64), (size,)).copy()
        self._chunks.append(chunk)

    def columns(self) -> Columns:
        """All events so far, concatenated (not sorted)."""
        if not self._chunks:
            return {name: np.zeros(0, dtype=np.int64) for name in COLUMNS}
        return {name: np.concatenate([c[name] for c in self._chunks]) for name in COLUMNS}


@dataclass(frozen=True)
class Calendar:
    """The simulated days, as local midnights, weekdays (Mon=0) and days of month."""

    midnight_ms: np.ndarray
    weekday: np.ndarray
    day_of_month: np.ndarray

    @staticmethod
    def of(start_ms: int, days: int) -> Calendar:
        """The calendar of `days` local days starting on the local day of `start_ms`."""
        first = (start_ms + CN_OFFSET_MS) // MS_PER_DAY
        epoch_days = np.arange(first, first + days + 1)
        return Calendar(
            midnight_ms=epoch_days * MS_PER_DAY - CN_OFFSET_MS,
            weekday=(epoch_days + 3) % 7,
            day_of_month=np.array([date.fromordinal(719_163 + int(d)).day for d in epoch_days]),
        )

    @property
    def days(self) -> int:
        """Number of days covered (one extra day absorbs a start that is not at midnight)."""
        return int(self.midnight_ms.size)


def times(g: np.random.Generator, cal: Calendar, day: np.ndarray, hours: str) -> np.ndarray:
    """An event time on each given day, drawn from an hour-of-day profile."""
    hour = g.choice(24, size=day.size, p=HOURS[hours])
    return cal.midnight_ms[day] + hour * MS_PER_HOUR + g.integers(0, MS_PER_HOUR, day.size)


def personal_times(
    g: np.random.Generator, cal: Calendar, pop: Population, src: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """Retail-profile times, with night owls' events drawn from the night profile."""
    ts = times(g, cal, day, "retail")
    owls = pop.night_owl[src]
    if owls.any():
        ts[owls] = times(g, cal, day[owls], "night")
    return ts


def daily_events(
    g: np.random.Generator, who: np.ndarray, rate: float | np.ndarray, factor: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events per account per day: (account, day) pairs. `factor` scales each day."""
    lam = np.multiply.outer(factor, np.broadcast_to(rate, who.shape))
    counts = g.poisson(lam)
    day, slot = np.nonzero(counts)
    reps = counts[day, slot]
    return np.repeat(who[slot], reps), np.repeat(day, reps)


def sessions(
    g: np.random.Generator, pop: Population, src: np.ndarray, channel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Device, IP and phone of the payer's own session for each event, by channel.

    Mobile sessions come from the account's phone over home Wi-Fi or a carrier-NAT address;
    web sessions from the PC if there is one; API (corporate) sessions from the office;
    card-present channels (POS, ATM, counter) carry no online session at all.
    """
    device = np.full(src.size, NONE, dtype=np.int64)
    ip = np.full(src.size, NONE, dtype=np.int64)
    phone = np.full(src.size, NONE, dtype=np.int64)
    online = (channel == CH_MOBILE) | (channel == CH_WEB) | (channel == CH_API)
    device[online] = pop.device[src[online]]
    ip[online] = pop.home_ip[src[online]]
    phone[online] = pop.phone[src[online]]
    web = (channel == CH_WEB) & (pop.pc[src] != NONE)
    device[web] = pop.pc[src[web]]
    on_carrier = (channel == CH_MOBILE) & (g.random(src.size) < 0.45)
    ip[on_carrier] = g.choice(pop.carrier_ips, size=int(on_carrier.sum()))
    return device, ip, phone


def round_amount(g: np.random.Generator, fen: np.ndarray, p_round: float, unit: int) -> np.ndarray:
    """Round a share `p_round` of amounts to whole `unit` fen (people like round numbers)."""
    fen = np.maximum(fen.astype(np.int64), 100)
    rounded = np.maximum((fen // unit) * unit, unit)
    return np.where(g.random(fen.size) < p_round, rounded, fen)


def add_own_sessions(
    ledger: Ledger,
    g: np.random.Generator,
    pop: Population,
    *,
    ts: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    amount: np.ndarray,
    channel: np.ndarray | int,
    memo: int = NONE,
    memo_p: float = 0.0,
    country: np.ndarray | int = 0,
) -> None:
    """Append legitimate events made from the payers' own sessions; drop self-payments."""
    keep = (src != dst) & (dst != NONE)
    channel_arr = np.broadcast_to(np.asarray(channel, dtype=np.int64), src.shape)[keep]
    src, dst, ts, amount = src[keep], dst[keep], ts[keep], amount[keep]
    device, ip, phone = sessions(g, pop, src, channel_arr)
    memo_col = np.where(g.random(src.size) < memo_p, memo, NONE)
    country_col = np.broadcast_to(np.asarray(country, dtype=np.int64), keep.shape)[keep]
    ledger.add(
        ts=ts,
        src=src,
        dst=dst,
        amount=amount,
        channel=channel_arr,
        device=device,
        ip=ip,
        phone=phone,
        memo=memo_col,
        country=country_col,
    )


def pick_channel(g: np.random.Generator, size: int, options: dict[int, float]) -> np.ndarray:
    """A channel per event from {channel: probability}."""
    keys = list(options)
    return np.array(keys)[g.choice(len(keys), size=size, p=list(options.values()))]


def lognormal_fen(
    g: np.random.Generator, size: int, median_cny: float, sigma: float, low: float, high: float
) -> np.ndarray:
    """Amounts in fen, log-normal around a median in yuan, clipped to [low, high] yuan."""
    cny = np.clip(median_cny * np.exp(g.normal(0.0, sigma, size)), low, high)
    return (cny * 100).astype(np.int64)


def change_devices(
    g: np.random.Generator, pop: Population, cols: Columns, start_ms: int, end_ms: int
) -> None:
    """Some people get a new phone during the window (a third also a new number): from that
    moment their mobile sessions carry the new device (and number)."""
    who = pop.personal[g.random(pop.personal.size) < 0.03]
    when = np.full(pop.n, np.iinfo(np.int64).max, dtype=np.int64)
    when[who] = g.integers(start_ms, end_ms, who.size)
    new_device = pop.device.copy()
    new_device[who] = [pop.entities.new_device() for _ in who]
    new_phone = pop.phone.copy()
    renumbered = who[g.random(who.size) < 0.33]
    new_phone[renumbered] = [pop.entities.new_phone() for _ in renumbered]
    src = cols["src"]
    base = src < pop.n
    changed = np.zeros(src.size, dtype=bool)
    changed[base] = (cols["ts"][base] >= when[src[base]]) & (
        cols["device"][base] == pop.device[src[base]]
    )
    cols["device"][changed] = new_device[src[changed]]
    cols["phone"][changed] = new_phone[src[changed]]
