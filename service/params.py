"""Query parameters several routes share: RFC 3339 times, opaque offset cursors."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from service.errors import InvalidParameter

_PREFIX = "o:"
# No list the API pages through comes near this; beyond it Redis would refuse the range.
MAX_OFFSET = 1_000_000_000


def offset_cursor(offset: int) -> str:
    """The cursor of the page that starts at `offset`."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode().rstrip("=")


def cursor_offset(cursor: str | None) -> int:
    """The offset a cursor names (0 for none); 422 naming `cursor` for a foreign one."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        digits = text[len(_PREFIX) :]
        if text.startswith(_PREFIX) and digits.isascii() and digits.isdigit() and len(digits) < 12:
            offset = int(digits)
            if offset <= MAX_OFFSET and offset_cursor(offset) == cursor:
                return offset
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise InvalidParameter("cursor", "cursor is not one this API issued")


def timestamp_ms(value: datetime | None, name: str) -> int | None:
    """Milliseconds since the epoch of a time parameter; 422 naming it without an offset or
    before 1970."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidParameter(name, f"`{name}` needs a UTC offset, e.g. 2026-03-01T00:00:00Z")
    ms = int(value.timestamp() * 1000)
    if ms < 0:
        raise InvalidParameter(name, f"`{name}` must not be before 1970-01-01")
    return ms
