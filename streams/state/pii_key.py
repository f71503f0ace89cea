"""Which pseudonymisation key a Redis's state was written with, so that a process given another
`FRAUDWATCH_PII_KEY` never mixes its pseudonyms into it.

Phones, IPs and device ids are kept as keyed hashes (`EntityHasher`). A worker with another key
turns the same device into another entity: device and phone counts split between the two
pseudonyms and watchlisted identifiers go unseen, without a word. So the first process that
writes records a fingerprint of its key (a keyed hash of a fixed text, from which the key cannot
be learnt) beside the layout marker, and the worker, `warmup`, `watchlist import` and `up` refuse
a Redis that holds another key's; the API reports it as not ready.
"""

from __future__ import annotations

import hashlib
import hmac

from streams.state.pipelines import AnyRedis

PII_KEY_FINGERPRINT_KEY = "fw:pii_key"
_PROBE = b"fraudwatch: the key this state was pseudonymised with"


class PiiKeyMismatch(RuntimeError):
    """Redis holds state pseudonymised with another key."""

    def __init__(self) -> None:
        super().__init__(
            "Redis holds fraudwatch state pseudonymised with another FRAUDWATCH_PII_KEY: with "
            "this one every phone, IP and device id would count as a new one and watchlisted "
            "ones would go unseen. Give this process the key the running workers and API use; "
            "to change the key on purpose: deploy/RUNBOOK.md, 'Changing the pseudonymisation key'"
        )


def key_fingerprint(key: str) -> str:
    """What is recorded of `key`: enough to tell two keys apart, nothing to learn one from."""
    return hmac.new(key.encode(), _PROBE, hashlib.sha256).hexdigest()[:32]


def recorded_fingerprint(client: AnyRedis) -> str | None:
    """The fingerprint of the key the state was written with (None: none recorded)."""
    stored = client.get(PII_KEY_FINGERPRINT_KEY)
    if stored is None:
        return None
    return stored.decode(errors="replace") if isinstance(stored, bytes) else str(stored)


def ensure_pii_key(client: AnyRedis, key: str) -> None:
    """Record `key`'s fingerprint in a Redis that has none; raise `PiiKeyMismatch` for one that
    holds another key's."""
    mine = key_fingerprint(key)
    if client.set(PII_KEY_FINGERPRINT_KEY, mine, nx=True):
        return
    recorded = recorded_fingerprint(client)
    if recorded is None:  # removed meanwhile (a key changed on purpose): record this one
        ensure_pii_key(client, key)
    elif recorded != mine:
        raise PiiKeyMismatch()
