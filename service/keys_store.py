"""API keys in Redis: each held only as its sha256 digest, with id, name, role and dates.

Layout (one `{keys}` hash-tagged slot, so a create or revoke is one MULTI even on Cluster):
`fw:{keys}:k:<digest>` is a hash of the key's record, and `fw:{keys}:ids` maps key id →
digest for listing and revoking. The secret itself is never stored.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from service.auth import ROLES, Caller, Role, key_digest
from streams.state.pipelines import AnyRedis, AsyncPipeline

log = logging.getLogger(__name__)

PREFIX = "fw:{keys}"
IDS = f"{PREFIX}:ids"
KEY_PREFIX = "fw_"


def record_key(digest: str) -> str:
    """Where the record of the key with this digest lives."""
    return f"{PREFIX}:k:{digest}"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is known of an API key, never the key itself."""

    key_id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None = None

    @classmethod
    def from_hash(cls, fields: dict[bytes, bytes]) -> KeyRecord:
        """From the stored hash (as redis-py returns it)."""
        text = {k.decode(): v.decode() for k, v in fields.items()}
        return cls(
            key_id=text["key_id"],
            name=text["name"],
            role=text["role"],  # type: ignore[arg-type]
            created_at=text["created_at"],
            revoked_at=text.get("revoked_at") or None,
        )


class KeyStore:
    """Creates, lists and revokes API keys."""

    def __init__(self, client: AnyRedis) -> None:
        self._redis = client

    def create(self, role: Role, name: str, now: str) -> tuple[str, KeyRecord]:
        """A new key (returned once, never stored) and its record."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(f"key_{secrets.token_hex(6)}", name, role, now)
        digest = key_digest(secret)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(record_key(digest), mapping={
            "key_id": record.key_id, "name": name, "role": role, "created_at": now,
        })  # fmt: skip
        pipe.hset(IDS, record.key_id, digest)
        pipe.execute()
        return secret, record

    @staticmethod
    def queue_lookup(pipe: AsyncPipeline, digest: str) -> None:
        """Queue the read of a presented key's record (for `caller_from`) on a pipeline."""
        pipe.hgetall(record_key(digest))

    @staticmethod
    def caller_from(fields: dict[bytes, bytes]) -> Caller | None:
        """The caller of a record read by `queue_lookup`; None if unknown or revoked."""
        if not fields:
            return None
        try:
            record = KeyRecord.from_hash(fields)
        except (KeyError, UnicodeDecodeError):
            # A record this version cannot read (damaged, or another shape) admits nobody.
            log.warning("api key record unreadable", extra={"fields": sorted(map(repr, fields))})
            return None
        if record.revoked_at is not None or record.role not in ROLES:
            return None
        return Caller(record.key_id, record.name, record.role)

    def list(self) -> list[KeyRecord]:
        """Every key ever created (revoked ones included), oldest first."""
        stored: list[bytes] = self._redis.hvals(IDS)  # type: ignore[assignment]
        digests = [d.decode() for d in stored]
        pipe = self._redis.pipeline(transaction=False)
        for digest in digests:
            pipe.hgetall(record_key(digest))
        records = [KeyRecord.from_hash(fields) for fields in pipe.execute() if fields]
        return sorted(records, key=lambda r: (r.created_at, r.key_id))

    def revoke(self, key_id: str, now: str) -> KeyRecord | None:
        """Mark the key revoked (idempotent: the first revocation time stays); None if unknown."""
        digest: bytes | None = self._redis.hget(IDS, key_id)  # type: ignore[assignment]
        if digest is None:
            return None
        key = record_key(digest.decode())
        self._redis.hsetnx(key, "revoked_at", now)
        fields: dict[bytes, bytes] = self._redis.hgetall(key)  # type: ignore[assignment]
        return KeyRecord.from_hash(fields)
