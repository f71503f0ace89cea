"""The state-store interface and what both implementations (Redis, in-memory) share.

A store applies transfers in arrival order and returns, for each, the facts as of that
transfer's event time. Each fact comes from the keys of one owner (the payer, the payee, or
one device / phone / IP), so every update touches one Redis hash slot. An owner keeps the facts
it computed for a transfer under that transfer's id: a redelivered transfer changes nothing
and gets back exactly the facts of its first delivery.

Window semantics (both stores implement exactly these; `spec.py` declares the layout, a
parity test and the golden tables in tests/state_golden.py hold them equal):
- payer: `out` entries (ts, tid, payee, amount) and `in` entries of the same account; a window
  `W` of a transfer at `ts` covers entries with `ts - W <= entry_ts <= ts`;
- `payees_first` / `payers_first`: first time each counterparty appeared (kept at its minimum,
  and kept while the window cap allows: a payee is not forgotten with the windows);
- `payees_last`, `payers_last`, `devices` and entity `accounts`: last time each member was seen
  (kept at its maximum); "seen in 7 days" counts members whose last time is `>= ts - 7d`;
- 24-hour amounts sum the clock hour of `ts` and the 23 before; an account keeps the hour
  buckets of the 27 hours up to its newest one per direction;
- each window keeps at most `window_cap` members, the newest by event time, trimmed at once;
- other entries older than the retention before the event day began are dropped by the day's
  first transfer on each side (payer, payee), devices' / phones' / IPs' raw values with them;
  entity accounts older than 7 days and an hour before the event week began, once a week;
  an entity's per-transfer facts past the dedupe horizon once a week and at every transfer
  whose event time is a multiple of 64 ms (a redelivery after that counts afresh).
- alert marks (`models.taint`): a transfer that alerted marks its payee (idempotent per
  transfer id; the account keeps the newest `TAINT_CAP` within a day and an hour of its newest);
  the payer function returns the payer's marks as they stand on every delivery, beside facts
  that a redelivery gets back unchanged;
- observation starts at the event time of the first transfer ever applied and starts again at
  a transfer after a silence longer than every window; each transfer is judged by the
  observation in force at its own time (`streams/state/observation.py`; on Redis, one key
  outside every account's slot, `spec.OBSERVED_SINCE`, written first in the batch's pipeline:
  the per-account functions never read it, so each still touches one slot).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from models.events import AccountProfile, Transfer
from models.features import RETENTION_MS, EntityFacts, PayeeFacts, PayerFacts
from models.identifiers import DEFAULT_PHONE_REGION, canonical_identifier
from models.taint import TaintMark
from streams.state.spec import MAX_WINDOW_CAP

ENTITY_KINDS = ("device", "phone", "ip")


class TransferFacts(NamedTuple):
    """Facts about one transfer, whether this delivery was its first, and when the observation
    in force at its event time began (`streams.state.observation`; for a dry run, as applying
    it would leave the observation)."""

    payer: PayerFacts
    payee: PayeeFacts
    entities: EntityFacts
    first_delivery: bool
    observed_since_ms: int
    # The payer's alert marks as they stood when this delivery read them (`models.taint`):
    # not kept with the facts, since which of them count depends on the transfer's place in
    # its input, not on what its first delivery saw.
    payer_marks: tuple[TaintMark, ...] = ()


@dataclass(frozen=True, slots=True)
class StateLimits:
    """Bounds that keep state memory fixed per account (shared by both stores); how long
    entries are kept is part of the layout (`spec.ACCOUNT_RETENTION_MS`)."""

    window_cap: int = 1000
    # How long, in event time, an account and a device / phone / IP keep the facts they gave
    # each transfer (so that its redeliveries get them back).
    dedupe_horizon_ms: int = 72 * 3_600_000

    def __post_init__(self) -> None:
        # Counts are packed in 16 bits; an account's facts go before its window entries do.
        if not 1 <= self.window_cap <= MAX_WINDOW_CAP:
            raise ValueError(f"window cap {self.window_cap} is outside 1..{MAX_WINDOW_CAP}")
        if not 0 < self.dedupe_horizon_ms <= RETENTION_MS:
            raise ValueError("the dedupe horizon must be positive and at most 30 days")


class SentTransfers(Protocol):
    """Transfers handed to a store that may still be applying them."""

    def facts(self) -> list[TransferFacts]:
        """Wait until they are applied; their facts, in input order (call once)."""
        ...


class PreparedTransfers(Protocol):
    """Transfers encoded for a store, not yet sent to it."""

    def send(self) -> SentTransfers:
        """Start applying them (once); the caller reads their facts later."""
        ...


@dataclass(frozen=True, slots=True)
class AppliedTransfers:
    """Transfers a store applied at once (no I/O to overlap with other work)."""

    applied: list[TransferFacts]

    def facts(self) -> list[TransferFacts]:
        """The facts, in input order."""
        return self.applied


@dataclass(frozen=True, slots=True)
class ImmediateTransfers:
    """Transfers that a store without I/O applies when they are sent."""

    apply: Callable[[], list[TransferFacts]]

    def send(self) -> AppliedTransfers:
        """Apply them now."""
        return AppliedTransfers(self.apply())


class StateStore(Protocol):
    """Applies transfers and profiles; returns per-transfer facts in input order."""

    def apply_transfers(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        """Record the transfers (once each) and return their facts, in input order."""
        ...

    def prepare_transfers(self, transfers: Sequence[Transfer]) -> PreparedTransfers:
        """Encode the transfers' state updates without any I/O, so a batch can be made ready
        while the previous one is still being applied. Its `send()` starts applying them and
        returns without waiting for the facts, so the caller can work meanwhile; the next
        batch is sent only after these facts were read."""
        ...

    def apply_profiles(self, profiles: Sequence[AccountProfile]) -> None:
        """Merge account profile updates (later fields replace earlier ones)."""
        ...

    def claim_transfer_ids(self, transfers: Sequence[Transfer]) -> list[bool]:
        """Keep each transfer's record (who paid whom, when, how much) under its id, unless
        the id already holds another transfer's; True for those, in input order. The same
        transfer again (a redelivery) holds its own record: False."""
        ...

    def put_marks(self, marks: Sequence[tuple[str, TaintMark]]) -> None:
        """Mark each payee (account id) with a transfer that alerted and paid it; marking
        twice changes nothing (`models.taint.keep_marks`)."""
        ...


# How many pseudonyms an `EntityHasher` remembers (about 200 bytes each).
PSEUDONYMS_KEPT = 65_536


class EntityHasher:
    """Keyed hash of personal identifiers, so raw phones, IPs and device ids never reach state.

    The one place identifiers are pseudonymised (state, watchlists, screening): each is first
    brought to its canonical form (`models.identifiers`), so one phone or IP written two ways
    is one pseudonym."""

    def __init__(self, key: str, phone_region: str = DEFAULT_PHONE_REGION) -> None:
        self._key = key.encode()
        self._phone_region = phone_region
        # A customer's device, phone and IP recur transfer after transfer, and bringing one to
        # its canonical form (a phone is parsed) then hashing it is a sixth of the worker's
        # CPU per transfer: the latest pseudonyms are kept, within a bound.
        self._recent = functools.lru_cache(maxsize=PSEUDONYMS_KEPT)(self._pseudonym)

    def __call__(self, kind: str, value: str) -> str:
        """A stable 20-hex-digit pseudonym of `value` of the given kind."""
        return self._recent(kind, value)

    def _pseudonym(self, kind: str, value: str) -> str:
        canonical = canonical_identifier(kind, value, self._phone_region)
        digest = hmac.new(self._key, f"{kind}:{canonical}".encode(), hashlib.sha256)
        return digest.hexdigest()[:20]

    def entities_of(self, transfer: Transfer) -> tuple[str | None, str | None, str | None]:
        """Pseudonyms of the transfer's device, phone and IP (None where absent)."""
        return (
            None if transfer.device_id is None else self("device", transfer.device_id),
            None if transfer.phone is None else self("phone", transfer.phone),
            None if transfer.ip is None else self("ip", transfer.ip),
        )


def entry_member(transfer_id: str, counterparty: str, amount_minor: int) -> str:
    """A window entry's member: transfer id, counterparty and amount, `|`-separated.

    Transfer ids cannot contain `|` and amounts are digits, so the counterparty is whatever
    lies between the first and the last separator.
    """
    return f"{transfer_id}|{counterparty}|{amount_minor}"


def split_member(member: str) -> tuple[str, str, int]:
    """Inverse of `entry_member`."""
    tid, rest = member.split("|", 1)
    counterparty, amount = rest.rsplit("|", 1)
    return tid, counterparty, int(amount)
