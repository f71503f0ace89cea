"""API keys and roles. A caller is who a bearer key says it is; routes declare their roles."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "investigator", "analyst", "bank"]
ROLES: tuple[Role, ...] = ("admin", "investigator", "analyst", "bank")


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated client of a request."""

    key_id: str
    name: str
    role: Role


def key_digest(key: str) -> str:
    """How keys are stored and compared: never in clear."""
    return hashlib.sha256(key.encode()).hexdigest()


class ConfiguredKeys:
    """The bootstrap admin keys from `FRAUDWATCH_API_KEYS`, held as digests."""

    def __init__(self, keys: list[str]) -> None:
        self._digests = [key_digest(key) for key in keys]

    def lookup(self, key: str) -> Caller | None:
        """The caller for a presented key, or None."""
        digest = key_digest(key)
        for index, known in enumerate(self._digests):
            if hmac.compare_digest(digest, known):
                return Caller(key_id=f"config-{index}", name="configured admin", role="admin")
        return None
