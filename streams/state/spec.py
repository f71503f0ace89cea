"""The state layout, declared once: both stores and the Lua functions are built from this.

Per account (hash tag `{a:<account>}`, one Redis Cluster slot):
- `windows`: ONE sorted set holding every window, each kind of entry in its own score band
  (`BANDS`): a band's scores are `base + ts_ms`, or `base + (SPAN - 1 - ts_ms)` for the
  "first seen" bands, so that one `ZADD GT` keeps the latest time in the others and the
  earliest in those. Members carry the band's one-letter prefix (unique across bands).
- `meta`: a hash of the profile fields (`META_FIELDS`, written by profile events), the
  packed state (`STATE_FIELDS` followed by the hour buckets), read and written whole by the
  state functions (one HMGET, one HSET per transfer), one field per device / phone / IP
  pseudonym (`IDENTIFIER_FIELD` + pseudonym) holding its raw value for audited views (it
  leaves when its pseudonym leaves the window it explains), and per transfer the facts its
  first delivery computed (`Side.facts_field`), kept for the dedupe horizon in event time: a
  redelivery gets them back unchanged; and the alert marks of the transfers that alerted and
  paid the account (`models.taint`), which the payer function returns on every delivery.
Per device / phone / IP (hash tag `{e:<kind>:<pseudonym>}`): `accounts`, one sorted set of the
payer accounts by last time seen, one marker member (`ENTITY_MARKER`) and the facts each
transfer got, kept in the set itself for the dedupe horizon (`entity_facts_score`).
Global: `OBSERVED_SINCE`, when observation began and began again after a long silence, and the
latest event time applied (`streams/state/observation.py`), written by the `observe` function
first in the batch's pipeline (a dry run only reads it) in its own slot: no other state
function reads it, so each still touches one owner's slot.

`SCRIPTS` names each state function's keys, arguments and the order of the facts it returns;
`streams/state/functions.py` turns them into the Lua bindings and checks the bodies against
them when it builds the library, and the stores encode calls and decode replies by them.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.features import (
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MINUTE,
    RETENTION_MS,
    WINDOW_7D_MS,
    PayeeFacts,
    PayerFacts,
)

# Events may arrive up to 10 minutes late; trimming waits longer than that.
TRIM_SLACK_MS = 60 * MS_PER_MINUTE
MS_PER_WEEK = 7 * MS_PER_DAY
# A band spans 2^44 ms (until the year 2527); nine bands stay below 2^53, so every score is
# an exact integer in a double (Lua's number) and in Redis.
BAND_SPAN = 2**44
# Hour buckets kept per direction: the 24 hours a sum reads, plus room for late events.
BUCKET_HOURS = 27


# When observation began and began again (see above): one global key.
OBSERVED_SINCE = "fw:observed_since"

@dataclass(frozen=True, slots=True)
class Band:
    """One kind of window entry in an account's `windows` sorted set."""

    name: str
    prefix: str
    index: int
    earliest: bool = False  # True: GT on the stored score keeps the earliest time

    @property
    def base(self) -> int:
        """The lowest score of the band."""
        return self.index * BAND_SPAN

    def score(self, ts_ms: int) -> int:
        """The score that stores time `ts_ms` in this band (see `check_storable`)."""
        return self.base + (BAND_SPAN - 1 - ts_ms if self.earliest else ts_ms)

    def ts(self, score: int) -> int:
        """The time a score of this band stores."""
        offset = score - self.base
        return BAND_SPAN - 1 - offset if self.earliest else offset

    def scores(self, low_ts: int | None, high_ts: int | None) -> tuple[int, int]:
        """The inclusive score range of times `low_ts`..`high_ts` (None: open end)."""
        low = 0 if low_ts is None else low_ts
        high = BAND_SPAN - 1 if high_ts is None else high_ts
        if self.earliest:
            return self.score(high), self.score(low)
        return self.score(low), self.score(high)


BANDS: tuple[Band, ...] = (
    Band("out", "o", 0),  # outgoing transfers: `tid|payee|amount_minor` at event time
    Band("in", "i", 1),  # incoming transfers: `tid|payer|amount_minor` at event time
    Band("payees_last", "l", 2),  # each payee at the last time it was paid
    Band("payers_last", "q", 3),  # each payer at the last time it paid
    Band("payees_first", "p", 4, earliest=True),  # each payee at the first time it was paid
    Band("payers_first", "r", 5, earliest=True),  # each payer at the first time it paid
    Band("devices", "d", 6),  # device pseudonyms the account paid from, at last use
    Band("phones", "h", 7),  # phone pseudonyms, at last use
    Band("ips", "n", 8),  # IP pseudonyms, at last use
)
BAND = {band.name: band for band in BANDS}
# The identifier kinds' bands, in `ENTITY_KINDS` order.
IDENTIFIER_BANDS = (BAND["devices"], BAND["phones"], BAND["ips"])


@dataclass(frozen=True, slots=True)
class Side:
    """The bands one role writes (payer: its outgoing windows and identifiers; payee: its
    incoming windows), each capped at the window cap; `expiring` are those its housekeeping
    also trims by time. The first-seen bands never expire: a counterparty paid once stays
    known (payee novelty is not forgotten with the windows), within the cap.

    The facts the side computed for a transfer are the meta field `facts_prefix` + transfer
    id while the transfer's entry in `entries` is there and its event time is within the
    dedupe horizon of the side's housekeeping day: each housekeeping drops the facts of the
    entries the day's advance took past the horizon, a cap trim those of the entries it drops,
    and the facts of a transfer already past the horizon (a late event, a replay) are not
    kept at all."""

    name: str
    bands: tuple[Band, ...]
    expiring: tuple[Band, ...]
    entries: Band
    facts_prefix: str

    def facts_field(self, transfer_id: str) -> str:
        """The meta field holding the side's facts of one transfer."""
        return self.facts_prefix + transfer_id

    @property
    def day_field(self) -> str:
        """The packed-state field holding the day of the side's last housekeeping."""
        return f"{self.name}_housekeeping_day"


PAYER_SIDE = Side(
    "payer",
    (BAND["out"], BAND["payees_last"], BAND["payees_first"], *IDENTIFIER_BANDS),
    (BAND["out"], BAND["payees_last"], *IDENTIFIER_BANDS),
    BAND["out"],
    ">",
)
PAYEE_SIDE = Side(
    "payee",
    (BAND["in"], BAND["payers_last"], BAND["payers_first"]),
    (BAND["in"], BAND["payers_last"]),
    BAND["in"],
    "<",
)

# How long each kind of entry is kept: every account window looks back at most 30 days
# (plus the slack for late events); devices, phones and IPs count accounts over 7 days.
ACCOUNT_RETENTION_MS = RETENTION_MS + TRIM_SLACK_MS
ENTITY_RETENTION_MS = WINDOW_7D_MS + TRIM_SLACK_MS

# The meta hash's fields: readable names here, two letters in Redis (one per account, so
# short names keep memory down). Profile fields hold decimal integers.
META_FIELDS: dict[str, str] = {
    "state": "s",  # the packed state below (binary, little-endian doubles)
    "opened_at_ms": "oa",
    "birth_year": "by",
    "is_business": "ib",  # 1 business, 0 personal
    "chain": "c",  # the batch call that last wrote the account (see `chain_link`)
    # Alert propagation (`models.taint`): the marks of the transfers that alerted and paid
    # the account, as text; the payer function's HMGET returns them beside its facts (fresh
    # on every delivery, not kept with the facts) and the `mark` function adds to them.
    "taint": "t",
}

# The meta field of a pseudonym's raw value: this prefix, then the pseudonym. (The facts
# fields start with `>` (payer) and `<` (payee): no field name starts like another kind's.)
IDENTIFIER_FIELD = "x"

# The packed state, in order; -1 where nothing is known yet. Per band: how many members it
# holds (so cap trims know their ranks without asking), the latest and the oldest time it
# holds (so a window that cannot hold anything is not counted, and a trim that cannot remove
# anything is not sent). `latest` and `oldest` may be looser than the truth (a member that
# moved or left), never tighter, except `latest_in`, which is exact: it is `last_in_ts`.
STATE_FIELDS: tuple[str, ...] = (
    "first_seen_ms",  # earliest event time the account was seen at, either side
    "out_sum_minor",  # sum of the amounts in the `out` band
    "payer_housekeeping_day",  # event day of the payer side's last trim (only moves forward)
    "payee_housekeeping_day",  # event day of the payee side's last trim (only moves forward)
    "ttl_week",  # event week of the last TTL refresh (only moves forward)
    *(f"{stat}_{band.name}" for band in BANDS for stat in ("size", "latest", "oldest")),
)
# Then: the number of outgoing hour buckets, of incoming ones, and (hour, amount) pairs.


# The bound of a fact packed narrow (a signed 16-bit integer): window counts stay below it
# (the window cap is at most MAX_WINDOW_CAP); a stored profile value beyond it reads as unknown.
NARROW_LIMIT = 2**15 - 1
MAX_WINDOW_CAP = 32_000


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """A state function: the keys it is called with, its arguments, what it returns.

    The payer and payee facts travel and are stored packed (little-endian): each fact in
    `wide` as a double (times, amounts, the opening date: exact integers below 2^53), every
    other one (window counts, bounded by the window cap; birth year and business flag) as a
    16-bit integer (`NARROW_LIMIT`); one C call packs or unpacks them all."""

    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...]
    facts: tuple[str, ...]
    wide: frozenset[str] = frozenset()

    @property
    def wire_format(self) -> str:
        """The `struct` format of the packed facts, in fact order."""
        return "<" + "".join("d" if fact in self.wide else "h" for fact in self.facts)


PAYER = ScriptSpec(
    "payer",
    keys=("windows", "meta"),
    args=(
        "ts",
        "tid",
        "payee",
        "amount",
        "device",
        "phone",
        "ip",
        "device_raw",
        "phone_raw",
        "ip_raw",
        "chain",
    ),
    facts=PayerFacts._fields,
    wide=frozenset(
        {
            "out_amt_24h",
            "out_amt_30d_prior",
            "in_amt_24h",
            "last_in_ts",
            "first_seen_ts",
            "opened_at",
        }
    ),
)
PAYEE = ScriptSpec(
    "payee",
    keys=("windows", "meta"),
    args=("ts", "tid", "payer", "amount", "chain"),
    facts=PayeeFacts._fields,
    wide=frozenset({"in_amt_24h", "out_amt_24h", "first_seen_ts", "opened_at"}),
)
ENTITY = ScriptSpec(
    "entity",
    keys=("accounts",),
    args=("ts", "account", "tid", "chain"),
    facts=("accounts_7d",),
)
ACCOUNT_VIEW = ScriptSpec(
    "account_view",
    keys=("windows", "meta"),
    args=(),
    facts=(
        "as_of",
        "out_n_24h",
        "out_amt_24h",
        "payees_1h",
        "payees_24h",
        "new_payees_24h",
        "in_n_24h",
        "in_amt_24h",
        "payers_1h",
        "payers_24h",
        "new_payers_24h",
        "opened_at",
        "birth_year",
        "is_business",
    ),
)
# Alert propagation: one transfer that alerted marks its payee (idempotent per transfer id);
# `added` is 1 if the mark is new and kept (`models.taint.keep_marks`).
MARK = ScriptSpec(
    "mark",
    keys=("meta",),
    args=("tid", "ts", "amount", "partition", "offset"),
    facts=("added",),
)
# When observation began and began again (`streams/state/observation.py`): one segment of a
# batch's event times applied to the global key; returns the observation as stored after it.
OBSERVE = ScriptSpec(
    "observe",
    keys=("observation",),
    args=("first", "last"),
    facts=("observation",),
)
SCRIPTS: tuple[ScriptSpec, ...] = (PAYER, PAYEE, ENTITY, ACCOUNT_VIEW, MARK, OBSERVE)

# An entity's sorted set: accounts (`ENTITY_ACCOUNT` + account id) scored by the last time
# seen, all at or above ENTITY_TIME_FLOOR; the marker, whose score packs the event week of
# the last trim and the number of accounts held, `week * ENTITY_COUNT_SPAN + accounts`; and
# each transfer's facts (`ENTITY_FACTS` + transfer id) at a negative score packing its event
# minute and its count (`entity_facts_score`). One-letter prefixes keep them apart whatever
# an account id holds.
ENTITY_ACCOUNT = "a"
ENTITY_MARKER = "m"
ENTITY_FACTS = "f"
ENTITY_CHAIN = "c"  # scored by the batch call that last wrote the entity (`chain_link`)
ENTITY_COUNT_SPAN = 2**13
# Account members' scores are event times, all above this (2000-01-01 is 946,684,800,000).
ENTITY_TIME_FLOOR = 900_000_000_000


def entity_facts_score(ts_ms: int, accounts_7d: int) -> int:
    """The score that keeps an entity's count for one transfer (below every other member)."""
    return -((ts_ms // MS_PER_MINUTE) * ENTITY_COUNT_SPAN + accounts_7d) - 1


class Unstorable(ValueError):
    """An event time the windows cannot hold (the event-time bounds keep them out)."""


def check_storable(ts_ms: int) -> None:
    """Raise `Unstorable` unless a band can hold `ts_ms` (1970 up to the year 2527)."""
    if not 0 <= ts_ms < BAND_SPAN:
        raise Unstorable(f"event time {ts_ms} ms is outside what state holds (1970..2527)")


def hour_of(ts_ms: int) -> int:
    """The clock hour (since the epoch) of an event time."""
    return ts_ms // MS_PER_HOUR


def day_of(ts_ms: int) -> int:
    """The UTC day (since the epoch) of an event time."""
    return ts_ms // MS_PER_DAY


def week_of(ts_ms: int) -> int:
    """The week (7-day period since the epoch) of an event time."""
    return ts_ms // MS_PER_WEEK


# A batch's calls on one owner (an account's keys, an entity's set) form a chain: call k of an
# attempt runs only after call k-1 of the same attempt wrote the owner. Otherwise, when a
# refusal clears while Redis still works through the pipeline (memory freed, functions loaded
# by another worker, a replica promoted), a later transfer of an account would be applied
# before an earlier one that was refused, and retried after it. Another writer between two
# calls (another worker's batch on a shared payee or device) also refuses the later call; the
# transport then sends the owner's calls again from its first. A link packs a random attempt
# token and the call's position: `token * CHAIN_SPAN + position`, position from 1; 0 means
# unchained (dry runs). Links stay below ENTITY_TIME_FLOOR, as an entity's set requires.
CHAIN_SPAN = 2**16
CHAIN_TOKENS = 2**23
CHAIN_REFUSED = "ORDER"


def chain_link(token: int, position: int) -> int:
    """The link of the call at `position` (from 1) of an attempt with `token`."""
    if not (0 < token < CHAIN_TOKENS and 0 < position < CHAIN_SPAN):
        raise ValueError(f"no chain link for token {token}, position {position}")
    return token * CHAIN_SPAN + position
