"""The audit log of access to personal data, and who sees personal data in clear.

Append-only: a Redis Stream (`fw:audit`, XADD; entries older than the audit retention are
trimmed by `service/retention.py`) of who (key id, name, role), what (method, path, resource)
and when. It never holds the personal data itself.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import re
from dataclasses import dataclass

from models.watchlist import iso_ms
from service.auth import Caller, Role
from service.masking import mask_identifier
from streams.state.pipelines import AnyRedis

STREAM = "fw:audit"
CLEAR_ROLES: tuple[Role, ...] = ("admin", "investigator")
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def record_cli_change(client: AnyRedis, command: str, resource: str) -> None:
    """Audit a change made from the command line (`fraudwatch COMMAND`), by the operating-system
    user who ran it: whoever holds the host holds admin."""
    caller = Caller("cli", getpass.getuser(), "admin")
    AuditLog(client).append(caller, "CLI", f"fraudwatch {command}", resource)


class BadAuditCursor(ValueError):
    """A cursor the audit log did not issue."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One access: who, what, when."""

    id: str
    at: str
    key_id: str
    key_name: str
    role: str
    method: str
    path: str
    resource: str


def _entry(stream_id: bytes, fields: dict[bytes, bytes]) -> AuditEntry | None:
    """The entry, or None for one of a shape this version does not know (skipped)."""
    text = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
    at = iso_ms(int(stream_id.split(b"-")[0])) or ""
    try:
        return AuditEntry(id=stream_id.decode(), at=at, **text)
    except TypeError:
        return None


def encode_cursor(stream_id: str) -> str:
    """Opaque position after an entry (newest-first order)."""
    return base64.urlsafe_b64encode(stream_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """Inverse of `encode_cursor`; raises `BadAuditCursor` on anything else."""
    try:
        stream_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadAuditCursor("cursor is not one this API issued") from None
    if (
        not _STREAM_ID.match(stream_id)
        or any(int(part) >= 2**64 for part in stream_id.split("-"))
        or encode_cursor(stream_id) != cursor
    ):
        raise BadAuditCursor("cursor is not one this API issued")
    return stream_id


class AuditLog:
    """Appends access records and reads them back, newest first."""

    def __init__(self, client: AnyRedis) -> None:
        self._redis = client

    def append(self, caller: Caller, method: str, path: str, resource: str) -> None:
        """Record that `caller` was given `resource` by `method path`."""
        self._redis.xadd(STREAM, {
            "key_id": caller.key_id, "key_name": caller.name, "role": caller.role,
            "method": method, "path": path, "resource": resource,
        })  # fmt: skip

    def trim(self, before_ms: int) -> int:
        """Drop the entries recorded before `before_ms`; returns how many."""
        return int(self._redis.xtrim(STREAM, minid=before_ms, approximate=False))

    def query(
        self,
        since_ms: int | None,
        until_ms: int | None,
        key_id: str | None,
        limit: int,
        cursor: str | None = None,
        budget: int = 10_000,
    ) -> tuple[list[AuditEntry], str | None]:
        """Entries in [since, until] (by key when given), newest first, and the next cursor.

        At most `budget` entries are examined: filtering by a key that rarely appears may
        answer a short (even empty) page whose cursor goes on from where the scan stopped."""
        high = f"({decode_cursor(cursor)}" if cursor else ("+" if until_ms is None else until_ms)
        low = "-" if since_ms is None else since_ms
        page: list[AuditEntry] = []
        examined = 0
        last_id = None
        while len(page) < limit and examined < budget:
            chunk = min(max(limit * 2, 100), budget - examined)
            rows: list[tuple[bytes, dict[bytes, bytes]]] = self._redis.xrevrange(  # type: ignore[assignment]
                STREAM, max=high, min=low, count=chunk
            )
            for stream_id, fields in rows:
                entry = _entry(stream_id, fields)
                if entry is not None and (key_id is None or entry.key_id == key_id):
                    page.append(entry)
                    if len(page) == limit:
                        return page, encode_cursor(stream_id.decode())
            if len(rows) < chunk:
                return page, None
            examined += len(rows)
            last_id = rows[-1][0].decode()
            high = f"({last_id}"
        return page, None if last_id is None else encode_cursor(last_id)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """How one request may show personal data: in clear (and audited) or masked."""

    caller: Caller
    log: AuditLog
    method: str
    path: str

    @property
    def in_clear(self) -> bool:
        """Whether the caller's role needs personal data in clear (admin, investigator)."""
        return self.caller.role in CLEAR_ROLES

    def identifier(self, kind: str, value: str) -> str:
        """A device, phone or IP as this caller may see it."""
        return value if self.in_clear else mask_identifier(kind, value)

    def birth_year(self, year: int | None) -> int | None:
        """An account holder's birth year, or None for roles that do not need it."""
        return year if self.in_clear else None

    def audit(self, resource: str) -> None:
        """Record the access when this response carries personal data in clear."""
        if self.in_clear:
            self.log.append(self.caller, self.method, self.path, resource)
